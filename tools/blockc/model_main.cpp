// blockc-model: the blockc commands that build models (summary, init, forward, export, train,
// generate); blockc hands them over so that its other commands never load LibTorch.
#include <c10/util/Exception.h>
#include <spdlog/spdlog.h>

#include "framework/nn/builder.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "framework/weights/safetensors.h"
#include "tools/blockc/error_boundary.h"
#include "tools/blockc/model_cli.h"

int main(int argc, char** argv) {
  blockc::set_up_logging();
  CLI::App app{"blockc: commands that build models"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Debug logging on stderr");
  blockc::ModelCommands model;
  blockc::add_model_commands(app, model);
  if (auto code = blockc::parse(app, argc, argv, verbose)) return *code;
  model.args.seed_given = model.forward->count("--seed") > 0 || model.export_->count("--seed") > 0;
  model.args.dtype_given = model.init->count("--dtype") > 0 ||
                           model.forward->count("--dtype") > 0 ||
                           model.export_->count("--dtype") > 0;
  return blockc::guarded([&] {
    // LibTorch's own errors (a missing kernel, a bad shape deep in an op) carry a C++
    // backtrace in what(): the user gets the message alone.
    try {
      if (model.summary->parsed()) return blockc::run_summary(model.args);
      if (model.init->parsed()) return blockc::run_init(model.args);
      if (model.forward->parsed()) return blockc::run_forward(model.args);
      if (model.export_->parsed()) return blockc::run_export(model.args);
      if (model.generate->parsed()) return blockc::run_generate(model.args);
      if (model.train->parsed()) {
        model.args.resume = model.train->count("--resume") > 0;
        return blockc::run_train(model.args);
      }
    } catch (const c10::Error& e) {
      throw blocks::Error(std::string("LibTorch: ") + e.what_without_backtrace());
    }
    return 2;
  });
}
