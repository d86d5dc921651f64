// Checkpoints of a training run that resume exactly, one folder each under RUN/checkpoints:
//   step-00000020/model.safetensors      the weights in blocks' names, the resolved run document
//                                        in the "blocks_config" metadata (blockc forward/export
//                                        read it as any blockc checkpoint)
//   step-00000020/optimizer.safetensors  AdamW's moments by parameter name, the RNG states
//   step-00000020/state.json             step, data position, and each file's size and hash
// A checkpoint is written into a hidden temporary folder beside the others (every file synced)
// and renamed into place, then the folder is synced: a crash or a full disk at any point leaves
// the earlier checkpoints as they were, and a reader sees whole checkpoints only. Loading
// checks every file against state.json and falls back to the previous checkpoint, saying why.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <map>

#include "framework/config/config.h"
#include "framework/config/error.h"

namespace blocks::train {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

class CheckpointError : public Error {
 public:
  using Error::Error;
};

struct CheckpointContents {
  int64_t step = 0;
  int64_t micro_batches = 0;  // data position: micro-batches drawn so far (all ranks together)
  NamedTensors model;
  std::map<std::string, std::string> model_metadata;
  NamedTensors optimizer;  // moments and "rng.cpu" (and "rng.cuda")
  config::Json extra = config::Json::object();  // anything else the trainer keeps
};

// RUN/checkpoints/step-NNNNNNNN for `step`.
std::string checkpoint_folder(const std::string& run_dir, int64_t step);
// Writes `contents` as the checkpoint of its step and removes all but the newest `keep`.
// Returns its folder. Throws io::FileError or weights::SafetensorsError (the earlier
// checkpoints intact).
std::string save_checkpoint(const std::string& run_dir, const CheckpointContents& contents,
                            int64_t keep);
// The complete checkpoints of `run_dir`, newest first (temporaries of interrupted writes are
// not among them).
std::vector<std::string> list_checkpoints(const std::string& run_dir);
// Throws CheckpointError naming the file when `folder` is not whole: a missing or truncated
// file, a size or hash that differs from state.json's.
void verify_checkpoint(const std::string& folder);
// The newest checkpoint that verifies; each newer one that does not is described in `skipped`.
// Empty when none does.
std::string newest_valid_checkpoint(const std::string& run_dir, std::vector<std::string>& skipped);
// Reads a verified checkpoint's state.json.
config::Json read_checkpoint_state(const std::string& folder);
// A 64-bit hash of a file's bytes (8 bytes at a time; for detecting damage, not attacks).
uint64_t file_hash(const std::string& path);

}  // namespace blocks::train
