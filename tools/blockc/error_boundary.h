// The one place a blockc program turns what escapes a command into a message and an exit code,
// so no input ends in an abort with a LibTorch backtrace.
#pragma once

#include <functional>

#include "framework/config/error.h"

namespace blockc {

// Runs `command` and returns its exit code; whatever it throws is logged as one error line on
// stderr and becomes: 1 for what the user gave (a config, a checkpoint, an input tensor, a
// path, memory the model needs), 70 (EX_SOFTWARE) for a registration bug in blocks or in a
// program's types. Messages of std::bad_alloc and filesystem errors say what failed. A command
// whose output to stdout could not be written (a closed pipe, /dev/full) exits 1.
int guarded(const std::function<int()>& command);

// Logs `error` and returns its exit code (as guarded does).
int report(const blocks::Error& error);

}  // namespace blockc
