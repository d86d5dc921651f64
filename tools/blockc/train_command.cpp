// blockc train: runs blocks::train::Trainer on a run file (or resumes a run folder) and shows
// its progress: a line redrawn in place on a terminal, one line per logged step otherwise.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/train/optimizer.h"
#include "framework/train/trainer.h"
#include "tools/blockc/model_commands.h"

namespace blockc {

namespace {

// The run's document: the run file, else (resuming) the run folder's run.yaml.
std::optional<blocks::config::Document> load_run(const ModelArgs& args, std::string& path) {
  path = args.model;
  if (path.empty()) {
    if (!args.resume) {
      spdlog::error("give a run file, or --resume RUN_DIR");
      return std::nullopt;
    }
    path = (std::filesystem::path(args.run_dir) / "run.yaml").string();
  }
  blocks::config::Diagnostics diagnostics;
  blocks::config::LoadOptions options;
  options.sets = args.sets;
  auto doc = blocks::config::load_document(path, blocks::registry(), diagnostics, options);
  std::cerr << diagnostics.format();
  if (doc && !doc->section<blocks::TrainConfig>("train")) {
    spdlog::error("{}: no `train:` section: a run file is a config with a model and a train "
                  "section (see `blockc explain train`)",
                  path);
    return std::nullopt;
  }
  return doc;
}

std::string progress_text(const blocks::config::Json& line, int64_t steps) {
  char text[200];
  std::snprintf(text, sizeof text,
                "step %lld/%lld  loss %.4f  lr %.3g  grad norm %.3g  %.0f tokens/s  %.1f ms",
                static_cast<long long>(line["step"].get<int64_t>()),
                static_cast<long long>(steps), line["loss"].get<double>(),
                line["lr"].get<double>(), line["grad_norm"].get<double>(),
                line["tokens_per_s"].get<double>(), 1000 * line["time_s"].get<double>());
  return text;
}

}  // namespace

int run_train(const ModelArgs& args) {
  std::string path;
  auto doc = load_run(args, path);
  if (!doc) return 1;
  const auto& section = *doc->section<blocks::TrainConfig>("train");
  blocks::train::TrainOptions options;
  options.run_dir = args.run_dir.empty()
                        ? "runs/" + std::filesystem::path(path).stem().string()
                        : args.run_dir;
  options.resume = args.resume;
  options.device = args.device;
  options.until = args.until;
  options.peak_flops = args.peak_tflops * 1e12;
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(args.timeout_s * 1000));
  const bool terminal = ::isatty(STDERR_FILENO);
  bool redrawn = false;
  options.on_log = [&](const blocks::config::Json& line) {
    if (line.contains("loss")) {
      const std::string text = progress_text(line, section.steps);
      if (terminal) {
        std::fprintf(stderr, "\r%s\033[K", text.c_str());
        redrawn = true;
      } else {
        std::fprintf(stderr, "%s\n", text.c_str());
      }
      return;
    }
    if (redrawn) std::fputc('\n', stderr), redrawn = false;
    if (line.contains("val_loss"))
      spdlog::info("step {}: validation loss {:.4f}", line["step"].get<int64_t>(),
                   line["val_loss"].get<double>());
    else if (line.value("event", "") == "checkpoint")
      spdlog::info("step {}: saved {}", line["step"].get<int64_t>(),
                   line["path"].get<std::string>());
    else if (line.value("event", "") == "resume")
      spdlog::info("resuming at step {} from {}", line["step"].get<int64_t>(),
                   line["checkpoint"].get<std::string>());
  };
  options.on_note = [&](const std::string& note) {
    if (redrawn) std::fputc('\n', stderr), redrawn = false;
    spdlog::warn("{}", note);
  };
  blocks::train::Trainer trainer(*doc, options);
  if (trainer.rank() == 0)
    spdlog::info("training {} parameters for {} steps into {}",
                 trainer.optimizer().trainable_numel(), section.steps, options.run_dir);
  const auto summary = trainer.run();
  if (redrawn) std::fputc('\n', stderr);
  if (trainer.rank() == 0) {
    std::cout << "trained steps " << summary.first_step + 1 << ".." << summary.last_step
              << ": loss " << summary.last_loss << "\n"
              << "checkpoint: " << summary.checkpoint << "\n"
              << "log: " << options.run_dir << "/log.jsonl (draw it: blockc plot "
              << options.run_dir << ")\n";
  }
  return 0;
}

}  // namespace blockc
