// `blockc tokenize`: a tokenizer's ids and pieces for a text, or the text of ids
// (framework/text/tokenizer.h), to see what a model will be given.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace blockc {

struct TokenizeCommand {
  CLI::App* command = nullptr;
  std::string tokenizer;  // a file, a folder holding one, or "bytes"
  std::string text, file;
  std::vector<int64_t> decode;
  bool json = false;
  bool parsed() const { return command->parsed(); }
};

// Adds the subcommand to `app`, bound to `c` (so `c` must outlive parsing).
void add_tokenize_command(CLI::App& app, TokenizeCommand& c);

// Prints the ids and pieces (or the decoded text); returns the exit code (errors are thrown, for
// the error boundary).
int run_tokenize(const TokenizeCommand& c);

}  // namespace blockc
