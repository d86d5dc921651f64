#include "tools/blockc/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace blockc {

namespace {

std::string bytes_text(double bytes) {
  char text[32];
  if (bytes >= 1e9)
    std::snprintf(text, sizeof text, "%.1f GB", bytes / 1e9);
  else
    std::snprintf(text, sizeof text, "%.0f MB", bytes / 1e6);
  return text;
}

}  // namespace

std::string progress_line(const std::string& what, size_t done, size_t total, double seconds) {
  constexpr int kWidth = 24;
  const double fraction = total ? double(done) / double(total) : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string line = what + "  [" + std::string(filled, '#') + std::string(kWidth - filled, ' ') +
                     "]";
  char text[96];
  std::snprintf(text, sizeof text, " %3d%%  ", static_cast<int>(fraction * 100));
  line += text;
  // Done and total in the unit of the total, so that the two read alike.
  if (total >= 1e9)
    std::snprintf(text, sizeof text, "%.1f/%.1f GB", done / 1e9, total / 1e9);
  else
    std::snprintf(text, sizeof text, "%.0f/%.0f MB", done / 1e6, total / 1e6);
  line += text;
  if (seconds > 0.2 && done > 0) {
    const double rate = double(done) / seconds;
    line += "  " + bytes_text(rate) + "/s";
    if (done < total) {
      std::snprintf(text, sizeof text, "  ETA %.0f s", double(total - done) / rate);
      line += text;
    }
  }
  return line;
}

std::function<void(size_t, size_t)> progress_bar(const std::string& what) {
  if (!isatty(STDERR_FILENO)) return {};
  using Clock = std::chrono::steady_clock;
  struct State {
    Clock::time_point start = Clock::now(), drawn{};
    bool finished = false;
  };
  auto state = std::make_shared<State>();
  return [what, state](size_t done, size_t total) {
    if (state->finished) return;
    const auto now = Clock::now();
    const bool last = done >= total;
    if (!last && now - state->drawn < std::chrono::milliseconds(100)) return;
    state->drawn = now;
    const double seconds = std::chrono::duration<double>(now - state->start).count();
    // \33[K clears what a longer previous line left.
    std::fprintf(stderr, "\r%s\33[K", progress_line(what, done, total, seconds).c_str());
    if (last) {
      std::fprintf(stderr, "\n");
      state->finished = true;
    }
    std::fflush(stderr);
  };
}

}  // namespace blockc
