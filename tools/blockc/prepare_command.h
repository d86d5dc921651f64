// `blockc prepare`: text files to train and validation token files, a byte a token
// (framework/data/prepare.h, for a first run without a tokenizer) or with a tokenizer
// (framework/text/prepare.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "framework/data/prepare.h"

namespace blockc {

struct PrepareCommand {
  CLI::App* command = nullptr;
  blocks::data::BytePrepareOptions options;
  std::string format = "nanogpt";
  std::vector<std::string> texts;  // --text: documents for --tokenizer
  std::string tokenizer;
  bool parsed() const { return command->parsed(); }
};

// Adds the subcommand to `app`, bound to `c` (so `c` must outlive parsing).
void add_prepare_command(CLI::App& app, PrepareCommand& c);

// Writes the files and prints what each holds; returns the exit code (errors are thrown, for
// the error boundary).
int run_prepare(PrepareCommand& c);

}  // namespace blockc
