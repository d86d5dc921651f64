// The training loop of a run file's `train:` section (blocks/train/train.h), for `blockc train`
// and for programs that link blocks::train:
//
//   config::Diagnostics diagnostics;
//   auto run = config::load_document("run.yaml", blocks::registry(), diagnostics);
//   train::Trainer trainer(*run, {.run_dir = "runs/tiny"});
//   train::TrainSummary summary = trainer.run();
//
// Each optimizer step draws `accumulation` micro-batches, averages their gradients (each loss
// divided by accumulation, as nanoGPT's train.py), averages them over the processes of a
// data-parallel launch, clips the global norm, and steps AdamW at the schedule's rate. Rank 0
// writes RUN/log.jsonl (one JSON object per step, per evaluation, per event), RUN/run.yaml (the
// resolved run, with absolute data paths) and the checkpoints (checkpoint.h). A run resumes
// from its newest whole checkpoint exactly: the weights, AdamW's moments and step, the data
// position (windows depend only on the seed and their index) and the RNG states come back, so
// 10 steps, a kill and 10 more give the bytes 20 steps give.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/intrusive_ptr.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "blocks/models/model_module.h"
#include "blocks/train/train.h"
#include "framework/config/document.h"
#include "framework/config/error.h"

namespace c10d {
class ProcessGroup;
}

namespace blocks::data {
class Batches;
}

namespace blocks::train {

class AdamW;
class DataParallel;
struct RunData;
struct DataSource;

// A run that cannot go on: a non-finite loss, a run folder that holds another run.
class TrainError : public Error {
 public:
  using Error::Error;
};

struct TrainOptions {
  std::string run_dir;
  // Continue the run in run_dir from its newest whole checkpoint (it must have one).
  bool resume = false;
  std::string device = "cpu";
  // Stop after this step (saving a checkpoint there), before the run's steps; 0: run them all.
  int64_t until = 0;
  // How long a collective of a data-parallel run may wait for the other ranks: a rank that
  // died makes the others fail after this, not hang.
  std::chrono::milliseconds timeout = std::chrono::seconds(120);
  // Keep freed memory in the process for the next step (glibc's mallopt: large blocks from the
  // heap, not fresh mmaps, and no trimming): a step allocates the same activations every time,
  // and fresh pages cost a page fault each (half of a GPT-2 step's time on this CPU).
  bool reuse_memory = true;
  // The hardware's peak FLOP/s for the MFU estimate; nanoGPT's figure (A100 bfloat16).
  double peak_flops = 312e12;
  // Each line written to log.jsonl (on rank 0), and notes (resume, fallbacks, skipped steps).
  std::function<void(const config::Json& line)> on_log;
  std::function<void(const std::string& note)> on_note;
};

struct TrainSummary {
  int64_t first_step = 0;  // steps already done at start (a resume's checkpoint)
  int64_t last_step = 0;
  double last_loss = 0;
  std::string checkpoint;  // the newest checkpoint written
};

class Trainer {
 public:
  // Builds the model of `run` (a resolved document with a `train` section) and its start: a
  // resumed checkpoint, the section's start weights, or the initialization from its seed.
  // In a torchrun launch (WORLD_SIZE > 1) it joins the process group, and rank 0's parameters
  // reach every rank.
  Trainer(const config::Document& run, TrainOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainSummary run();

  Model& model() { return model_; }
  AdamW& optimizer() { return *optimizer_; }
  int64_t step() const { return step_; }
  int rank() const;
  int world_size() const;
  // Forward FLOPs + backward per token (nanoGPT's 6N + 12 L H Q T, from blocks' own count).
  double flops_per_token() const { return flops_per_token_; }

 private:
  at::Tensor batch_loss(const DataSource& source, int64_t index);
  double micro_step(int64_t index, double scale);
  double evaluate();
  void log(config::Json line);
  void note(const std::string& text);
  std::string save(int64_t step);
  void start_fresh();
  void resume();
  void make_parallel();
  void truncate_log();
  void write_run_file();

  const config::Document& document_;
  const TrainConfig& train_;
  TrainOptions options_;
  Model model_;
  at::Device device_;
  std::unique_ptr<AdamW> optimizer_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  std::unique_ptr<DataParallel> parallel_;
  std::unique_ptr<RunData> data_;
  int64_t vocab_size_ = 0;
  int64_t step_ = 0;
  int64_t micro_batches_ = 0;
  double flops_per_token_ = 0;
  std::string last_checkpoint_;
};

}  // namespace blocks::train
