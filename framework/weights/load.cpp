#include "framework/weights/load.h"

#include <c10/core/GradMode.h>

#include <map>
#include <set>
#include <sstream>

#include "framework/weights/safetensors.h"

namespace blocks::weights {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string LoadReport::format() const {
  std::ostringstream out;
  auto list = [&](const char* title, const std::vector<std::string>& items) {
    if (items.empty()) return;
    out << title << " (" << items.size() << "):\n";
    for (const auto& item : items) out << "  " << item << "\n";
  };
  list("missing from the checkpoint", missing);
  list("unexpected in the checkpoint", unexpected);
  list("shape mismatches", mismatched);
  return out.str();
}

LoadReport load_safetensors(const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                            const std::vector<std::string>& files, bool strict,
                            const std::function<void(size_t, size_t)>& progress) {
  std::vector<SafetensorsFile> opened;
  for (const auto& path : files) opened.push_back(SafetensorsFile::open(path));
  std::map<std::string, const SafetensorsFile*> where;
  for (const auto& file : opened)
    for (const auto& info : file.tensors()) where.emplace(info.name, &file);

  LoadReport report;
  std::set<std::string> wanted;
  std::vector<std::pair<at::Tensor, std::pair<const SafetensorsFile*, std::string>>> plan;
  for (const auto& [name, target] : parameters) {
    wanted.insert(name);
    auto it = where.find(name);
    if (it == where.end()) {
      report.missing.push_back(name);
      continue;
    }
    const auto& shape = it->second->find(name)->shape;
    if (shape != target.sizes().vec()) {
      report.mismatched.push_back(name + ": checkpoint " + shape_text(shape) + ", model " +
                                  shape_text(target.sizes().vec()));
      continue;
    }
    plan.push_back({target, {it->second, name}});
  }
  for (const auto& [name, file] : where)
    if (!wanted.count(name)) report.unexpected.push_back(name);
  if (strict && !report.ok())
    throw LoadError("the checkpoint does not fit the model:\n" + report.format(), report);
  c10::NoGradGuard no_grad;
  size_t total = 0, done = 0;
  for (const auto& step : plan) total += step.first.nbytes();
  for (auto& [target, source] : plan) {
    if (progress) progress(done, total);
    // Chunk by chunk, each chunk's file pages given back once copied: peak memory is the
    // model plus a few MiB, whatever the file's dtype.
    source.first->copy_into(source.second, target);
    ++report.loaded;
    done += target.nbytes();
  }
  if (progress) progress(total, total);
  return report;
}

}  // namespace blocks::weights
