// A progress bar on stderr for long model work (loading, initializing), only when stderr is a
// terminal: scripts and CI logs get nothing.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace blockc {

// "loading  [##########          ]  50%  1.4/2.8 GB  1.1 GB/s  ETA 1 s", redrawn at most ten
// times a second, finished with a newline. Called with (bytes done, bytes in all).
// Empty when stderr is not a terminal.
std::function<void(size_t, size_t)> progress_bar(const std::string& what);

// One line of the bar, for tests: `seconds` since the start.
std::string progress_line(const std::string& what, size_t done, size_t total, double seconds);

}  // namespace blockc
