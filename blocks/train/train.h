// The `train:` section of a run file: what `blockc train` and blocks::train::Trainer do with the
// file's model. Paths are relative to the file that writes them (an `extends` base's own
// folder for paths the base gives).
//
//   version: 1
//   extends: ../configs/gpt2.yaml        # the model
//   train:
//     steps: 5000
//     data: {train: data/train.bin, validation: data/val.bin, sequence_length: 256,
//            micro_batch: 12, accumulation: 5}
//     optimizer: {lr: 6.0e-4, beta2: 0.95, weight_decay: 0.1}
//     schedule: {type: cosine, warmup_steps: 100, min_lr: 6.0e-5}
//     checkpoint: {every: 500, keep: 3}
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "blocks/kinds.h"
#include "blocks/schedules/constant.h"

namespace blocks {

// Where the weights start: a seeded initialization, or a checkpoint.
struct TrainStartConfig : Declared<TrainStartConfig, config::Config> {
  static constexpr std::string_view type_name = "train_start";
  static constexpr std::string_view type_doc =
      "The initial weights: the model's initialization from the run's seed, or `weights`.";
  std::optional<std::string> weights;
  std::optional<std::string> map;
  std::optional<std::string> adapters;
  std::optional<std::string> model_type;
  static void declare(Fields<TrainStartConfig>& f);
};

// Token files (or example shards) and the batches drawn from them.
struct TrainDataConfig : Declared<TrainDataConfig, config::Config> {
  static constexpr std::string_view type_name = "train_data";
  static constexpr std::string_view type_doc =
      "Token files (nanoGPT's uint16 .bin, llm.c's header + tokens), memory-mapped; or, for "
      "early-fusion models, safetensors shards of examples with their media.";
  std::string train;
  std::optional<std::string> validation;
  std::string format = "auto";
  int64_t sequence_length = 0;
  int64_t micro_batch = 1;
  int64_t accumulation = 1;
  std::string sampling = "random";
  static void declare(Fields<TrainDataConfig>& f);
};

// AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW step for step) over the parameter
// table: each parameter's rate is the schedule's times its lr scale; frozen ones are left out.
struct AdamWConfig : Declared<AdamWConfig, config::Config> {
  static constexpr std::string_view type_name = "adamw";
  static constexpr std::string_view type_doc =
      "AdamW over the trainable parameters, each at lr x its lr scale.";
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t decay_min_dims = 2;
  std::vector<std::string> no_decay;
  static void declare(Fields<AdamWConfig>& f);
};

struct TrainEvalConfig : Declared<TrainEvalConfig, config::Config> {
  static constexpr std::string_view type_name = "train_eval";
  static constexpr std::string_view type_doc = "Validation loss every N steps over M batches.";
  int64_t every = 0;
  int64_t batches = 20;
  static void declare(Fields<TrainEvalConfig>& f);
};

struct TrainCheckpointConfig : Declared<TrainCheckpointConfig, config::Config> {
  static constexpr std::string_view type_name = "train_checkpoint";
  static constexpr std::string_view type_doc =
      "Checkpoints that resume exactly, written atomically every N steps; the last K kept.";
  int64_t every = 0;
  int64_t keep = 3;
  static void declare(Fields<TrainCheckpointConfig>& f);
};

struct TrainConfig : Declared<TrainConfig, config::Config> {
  static constexpr std::string_view type_name = "train";
  static constexpr std::string_view type_doc = "A training run of the file's model.";
  int64_t steps = 0;
  int64_t seed = 0;
  TrainStartConfig start;
  TrainDataConfig data;
  AdamWConfig optimizer;
  Dynamic<ScheduleConfig> schedule = ConstantScheduleConfig{};
  double clip_grad_norm = 1.0;
  std::string precision = "float32";
  int64_t log_every = 1;
  std::string on_nonfinite = "stop";
  TrainEvalConfig eval;
  TrainCheckpointConfig checkpoint;
  static void declare(Fields<TrainConfig>& f);
  void validate(const ResolveContext& ctx) const override;

  // The learning rate of optimizer step `it` (0-based).
  double lr_at(int64_t it) const { return schedule->lr_at(it, steps, optimizer.lr); }
};

// `value` of `owner`'s `field` as an absolute path: relative paths are taken from the folder
// of the file that wrote the field (the working folder for values given in C++).
std::string path_field(const config::Config& owner, std::string_view field,
                       const std::string& value);

// The rules between the run and its model (Registry::add_section's check): a language model
// (token files hold text), a sequence that fits its positions.
void check_train_section(const config::Config& section, const config::Config& model,
                         config::Diagnostics& diagnostics);

}  // namespace blocks
