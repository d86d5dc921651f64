// blockc-model: the blockc commands that build models (summary, init, forward); blockc hands
// them over so that its other commands never load LibTorch.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "framework/build/builder.h"
#include "framework/weights/load.h"
#include "framework/weights/safetensors.h"
#include "tools/blockc/model_cli.h"

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("blockc");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("blockc: %l: %v");
  CLI::App app{"blockc: commands that build models"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Debug logging on stderr");
  blockc::ModelCommands model;
  blockc::add_model_commands(app, model);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (verbose) spdlog::set_level(spdlog::level::debug);
  model.args.seed_given = model.forward->count("--seed") > 0;
  try {
    if (model.summary->parsed()) return blockc::run_summary(model.args);
    if (model.init->parsed()) return blockc::run_init(model.args);
    if (model.forward->parsed()) return blockc::run_forward(model.args);
  } catch (const blocks::weights::LoadError& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const blocks::weights::SafetensorsError& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::invalid_argument& e) {  // bad inputs, named by module path
    spdlog::error("{}", e.what());
    return 1;
  } catch (const blocks::build::BuildError& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 2;
}
