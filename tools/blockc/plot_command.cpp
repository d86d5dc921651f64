#include "tools/blockc/plot_command.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "framework/io/files.h"
#include "framework/plot/curves.h"

namespace blockc {

void add_plot_command(CLI::App& app, PlotCommand& c) {
  c.command = app.add_subcommand(
      "plot", "Draw a training run's loss and learning rate as SVG and PNG (from its log.jsonl)");
  c.command->add_option("run_dir", c.run_dir, "The run's folder (or its log.jsonl)")->required();
  c.command->add_option("-o,--output", c.prefix,
                        "Write PREFIX.svg and PREFIX.png (default: RUN_DIR/curves)");
}

namespace {

// RUN_DIR/curves, or beside the log when RUN_DIR names the log file itself.
std::string default_prefix(const std::string& run_dir) {
  const std::filesystem::path path(run_dir);
  const bool folder = std::filesystem::is_directory(path);
  return ((folder ? path : path.parent_path()) / "curves").string();
}

}  // namespace

int run_plot(const PlotCommand& c) {
  const blocks::plot::RunLog run = blocks::plot::read_run_log(c.run_dir);
  for (const auto& warning : run.warnings) spdlog::warn("{}", warning);
  if (run.train_loss.points.empty() && run.val_loss.points.empty())
    spdlog::warn("{}: no line has a loss yet; the curves are empty", run.path);
  const std::string prefix = c.prefix.empty() ? default_prefix(c.run_dir) : c.prefix;
  const std::string svg = prefix + ".svg", png = prefix + ".png";
  // Both checked before either is written: a bad prefix leaves no half of the pair behind.
  blocks::io::check_output(svg);
  blocks::io::check_output(png);
  blocks::io::write_file(svg, blocks::plot::curves_svg(run));
  blocks::plot::write_curves_png(run, png);
  std::cout << svg << "\n" << png << "\n";
  return 0;
}

}  // namespace blockc
