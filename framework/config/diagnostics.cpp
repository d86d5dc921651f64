#include "framework/config/diagnostics.h"

#include <algorithm>

namespace blocks::config {

std::string Diagnostic::format() const {
  std::string out = mark.where() + ": error: ";
  if (!path.empty()) out += path + ": ";
  out += message;
  // A value from a mounted file names the files that mounted it, or the line alone would not
  // say which of several mounts of one file is wrong.
  const std::string via = mark.chain();
  return via.empty() ? out : out + " (" + via + ")";
}

void Diagnostics::error(Mark mark, std::string path, std::string message) {
  // One problem reached through several paths (a block copied into per-layer overrides, an
  // aliased mapping) is reported once, under the shortest path: where it is written. A file
  // mounted twice is two places, each reported.
  if (mark.known()) {
    for (auto& d : items_) {
      if (d.mark.known() && *d.mark.file == *mark.file && d.mark.line == mark.line &&
          d.mark.column == mark.column && d.message == message && d.mark.chain() == mark.chain()) {
        if (path.size() < d.path.size()) d.path = std::move(path);
        return;
      }
    }
  }
  items_.push_back({std::move(mark), std::move(path), std::move(message)});
}

std::string Diagnostics::format() const {
  std::vector<Diagnostic> sorted = items_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
    const std::string fa = a.mark.file ? *a.mark.file : "";
    const std::string fb = b.mark.file ? *b.mark.file : "";
    if (fa != fb) return fa < fb;
    if (a.mark.line != b.mark.line) return a.mark.line < b.mark.line;
    return a.mark.column < b.mark.column;
  });
  std::string out;
  for (const auto& d : sorted) out += d.format() + "\n";
  return out;
}

void Diagnostics::append(const Diagnostics& other) {
  items_.insert(items_.end(), other.items_.begin(), other.items_.end());
}

ConfigError::ConfigError(Diagnostics diagnostics)
    : Error(diagnostics.format()), diagnostics_(std::move(diagnostics)) {}

}  // namespace blocks::config
