// Running a helper program (Graphviz's `dot`) without a shell: an argument vector searched on
// PATH, text fed to its stdin and its stdout and stderr read back through pipes, and a time-out
// after which it is killed. Nothing goes through a temporary file or a command line that the
// environment (TMPDIR) could inject into.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace blocks::graph {

struct ProgramRun {
  int start_error = 0;     // errno when the program could not be started (ENOENT: not found)
  bool timed_out = false;  // killed after the time-out
  int exit_code = -1;      // when it exited; -1 when a signal ended it
  int signal = 0;          // the signal that ended it, else 0
  std::string out, err;    // what it wrote to stdout and stderr
};

// `argv[0]` is looked up on PATH. Returns once the program has ended (or was killed).
ProgramRun run_program(const std::vector<std::string>& argv, std::string_view input,
                       std::chrono::milliseconds timeout);

}  // namespace blocks::graph
