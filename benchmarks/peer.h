// The Python peers' output: each benchmark runs its eager-PyTorch peer in the same run and reads
// the JSON line it prints; and the environment blockc runs models in.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
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

// Runs this benchmark again with OMP_WAIT_POLICY=PASSIVE unless it is set: blockc sets it for
// its model commands (tools/blockc/model_cli.cpp says why), and libgomp reads it only as it
// loads, so a program cannot set it for itself any later. Returns only when already set.
inline void run_as_blockc(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);
}

}  // namespace bench
