// `blockc plot RUN_DIR [-o PREFIX]`: a training run's loss and learning-rate curves
// (framework/plot/curves.h) as PREFIX.svg and PREFIX.png, by default RUN_DIR/curves.*.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace blockc {

struct PlotCommand {
  CLI::App* command = nullptr;
  std::string run_dir;  // a run folder, or its log.jsonl
  std::string prefix;   // "": RUN_DIR/curves
  bool parsed() const { return command->parsed(); }
};

// Adds the subcommand to `app`, bound to `c` (so `c` must outlive parsing).
void add_plot_command(CLI::App& app, PlotCommand& c);

// Writes both files and prints their paths, one a line; returns the exit code (errors are
// thrown, for the error boundary).
int run_plot(const PlotCommand& c);

}  // namespace blockc
