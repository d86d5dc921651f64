// The command-line definitions of the model commands (summary, init, forward, export, train), shared by
// blockc, which parses them for --help and usage errors and then hands over, and blockc-model,
// which links LibTorch and runs them.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>

#include "tools/blockc/model_commands.h"

namespace blockc {

struct ModelCommands {
  CLI::App* summary = nullptr;
  CLI::App* init = nullptr;
  CLI::App* forward = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* train = nullptr;
  CLI::App* generate = nullptr;
  ModelArgs args;
  bool parsed() const {
    return summary->parsed() || init->parsed() || forward->parsed() || export_->parsed() ||
           train->parsed() || generate->parsed();
  }
};

// Checks of option values made while parsing, so that a bad one is a usage error (exit 2):
// --set PATH=VALUE (config::check_set), --seed (0 to 2^64 - 1; -1 and 2^64 both became
// 2^64 - 1), sizes such as 5GB (parse_size; 10^23 TB wrapped).
CLI::Validator set_assignment();
CLI::Validator seed_number();
CLI::Validator byte_size();
CLI::Validator positive();  // a whole number of 1 or more, said plainly
// --max-layers, bound to LoadLimits::max_layers.
void add_max_layers(CLI::App& command, int64_t& max_layers);

// Adds the subcommands to `app`, bound to `c.args` (so `c` must outlive parsing).
void add_model_commands(CLI::App& app, ModelCommands& c);

// Logs through spdlog on stderr as "blockc: LEVEL: message".
void set_up_logging();

// Parses the arguments; an exit code when the program should stop (help: 0, usage error: 2).
// Turns on debug logging when `verbose` was given.
std::optional<int> parse(CLI::App& app, int argc, char** argv, const bool& verbose);

// Replaces this process by blockc-model (beside this program) with the same arguments;
// returns only on failure (exit code 2).
int exec_model_program(int argc, char** argv);

}  // namespace blockc
