// The Python peers' output: each benchmark runs its eager-PyTorch peer in the same run and reads
// the JSON line it prints.
#pragma once

#include <cstdio>
#include <string>

namespace bench {

// What `command` printed, or "" when it could not start or exited non-zero.
inline std::string run_peer(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return {};
  std::string out;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  return ::pclose(pipe) == 0 ? out : std::string();
}

}  // namespace bench
