// The blockc commands that build models (LibTorch): summary, init, forward, export, train.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace blockc {

struct ModelArgs {
  std::string model;               // blocks YAML, or a Hugging Face folder (forward)
  // --map: a YAML name mapping for --weights; with --weights COMPONENT=PATH, COMPONENT=FILE
  // for the components whose checkpoints it names (repeatable then).
  std::vector<std::string> map;
  std::vector<std::string> sets;   // --set overrides
  std::vector<std::string> weights;
  std::string input, output;
  std::vector<std::string> hidden_states;  // forward --hidden-state
  std::vector<std::string> images;         // forward/generate --image
  std::string image_processor;             // forward/generate --image-processor
  std::string dtype = "float32";
  bool dtype_given = false;
  std::string to = "blocks";          // export: blocks or hf
  std::string model_type;             // export --to hf
  std::string max_shard_size = "5GB";  // export --to hf
  bool replace = false;                // export --to hf into a folder holding a checkpoint
  bool merge_adapters = false;         // export: fold LoRA into the base weights
  bool adapters_only = false;          // export: the LoRA adapters alone (--to hf: PEFT folder)
  std::string adapters;                // forward/export: adapters file or PEFT folder to load
  int64_t max_positions = 0;           // export --to hf: max_position_embeddings; 0: the source's
  uint64_t seed = 0;
  bool seed_given = false;
  int depth = 4;
  int64_t context = 2048;
  std::string run_dir;        // train --out / --resume
  bool resume = false;        // train --resume
  std::string device = "cpu";  // train --device
  int64_t until = 0;          // train --until
  double peak_tflops = 312;   // train --peak-tflops
  double timeout_s = 120;     // train --timeout: collectives of data parallelism
  // generate
  std::string prompt, prompt_file, prompt_tokens, tokenizer;
  int64_t max_new_tokens = 32;
  bool greedy = false, json = false;
  bool truncate = false;  // generate: drop a long prompt's oldest tokens
  double temperature = 1.0, top_p = 1.0, min_p = 0.0, repetition_penalty = 1.0;
  int64_t top_k = 0;
  uint64_t sample_seed = 0;
  std::vector<std::string> stops;
  std::vector<int64_t> stop_ids;  // generate --stop-id: beside the tokenizer's EOS
  double guidance_scale = 1.0;  // generate: classifier-free guidance
  std::string negative_prompt, guidance_space = "log_probs";
};

int run_summary(const ModelArgs& args);
int run_init(const ModelArgs& args);
int run_forward(const ModelArgs& args);
int run_export(const ModelArgs& args);
int run_train(const ModelArgs& args);
int run_generate(const ModelArgs& args);

// "5GB", "500MB", "1.5GiB", "123" (bytes) -> bytes; nullopt when unreadable. Decimal units as
// Hugging Face's max_shard_size (GB = 1e9), binary ones with an i.
std::optional<uint64_t> parse_size(const std::string& text);

}  // namespace blockc
