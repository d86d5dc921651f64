// Training examples with media for early-fusion models (LLaVA, KOSMOS-1), read from safetensors
// shards as a processor leaves them (transformers' LlavaProcessor: input_ids with each image's
// placeholder run already expanded; pixel_values of the images in order):
//
//   tokens        integer [rows, sequence_length + 1]
//   pixel_values  float [items, ...]: the media of the rows in row order, one item per
//                 placeholder run (one such tensor for each input the model's encoders take,
//                 named as the model's inputs() name it)
//
// A row's inputs are its first sequence_length tokens, its targets the same shifted by one, with
// -100 (kIgnoredTarget: the label HF's and torchtune's losses ignore) where the target is a
// media placeholder: a model that is handed an image is not asked to predict it.
//
//   ExampleShards shards("data/train", 128, {{"pixel_values", 32000, 576}}, 32064,
//                        data::Sampling::random, 1337);
//   auto batch = shards.batch(7, 32, 0, 16);  // this rank's 16 of micro-batch 7's 32 rows
//
// Rows are drawn as data::pick_item says: a run resumed at micro-batch k, and ranks that each
// take their share of the rows, draw exactly what one unbroken run draws.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "framework/data/batches.h"

namespace blocks::train {

inline constexpr int64_t kIgnoredTarget = -100;

// One input of the model's encoders: its name, the token id its items replace, and how many
// tokens an item fills (EarlyFusionModel::Part's input, placeholder and tokens).
struct MediaSlot {
  std::string input;
  int64_t placeholder = 0;
  int64_t run = 0;
};

struct ExampleBatch {
  at::Tensor tokens;   // int64 [rows, sequence_length]
  at::Tensor targets;  // int64 [rows, sequence_length], kIgnoredTarget at media placeholders
  std::map<std::string, at::Tensor> media;  // by input name; absent: no item in these rows
};

class ExampleShards {
 public:
  // `path`: one safetensors file, or a folder whose *.safetensors are the shards in name order.
  // Checks every shard at once and throws data::DataError naming the shard (and row) for
  // tokens that are missing, of another width or outside [0, vocab_size), a row that ends
  // inside a placeholder run or holds a partial run, media counts that do not match the runs,
  // and tensors the model does not take.
  ExampleShards(const std::string& path, int64_t sequence_length, std::vector<MediaSlot> media,
                int64_t vocab_size, data::Sampling sampling, uint64_t seed);

  // Rows [row_begin, row_begin + row_count) of micro-batch `index`, of `rows` rows, on the CPU.
  ExampleBatch batch(uint64_t index, int64_t rows, int64_t row_begin, int64_t row_count) const;

  int64_t size() const { return total_; }
  const std::string& path() const { return path_; }

 private:
  struct Shard {
    std::string path;
    at::Tensor tokens;                        // int64 [rows, sequence_length + 1]
    std::map<std::string, at::Tensor> media;  // by input name
    // By input name: row r's items are [first[r], first[r + 1]) of its media tensor.
    std::map<std::string, std::vector<int64_t>> first;
    int64_t begin = 0;  // the index of its first row among all shards' rows
  };
  std::string path_;
  int64_t sequence_length_;
  std::vector<MediaSlot> slots_;
  data::Sampling sampling_;
  uint64_t seed_;
  std::vector<Shard> shards_;
  int64_t total_ = 0;
};

}  // namespace blocks::train
