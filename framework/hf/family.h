// A Hugging Face family as data, and the registry of them. Each family is one file under
// framework/hf/families/ defining
//   void register_hf_NAME(hf::Families& families)
// (collected by cmake/registrations.cmake, so adding a family edits no list): its transformers
// class defaults, one key table for import and export, its tensor names, its class name and
// what it cannot express. The engines (import.cpp, export_config.cpp, weights/hf_names.cpp)
// read nothing else about a family.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "framework/hf/architecture.h"
#include "framework/hf/keys.h"

namespace blocks::hf {

// Which linears carry a bias, as the family's config can say it.
enum class Biases {
  per_branch,  // llama: attention_bias for query, key, value and output; mlp_bias for the MLP
  none,        // mistral, mixtral, phi3
  qkv,         // qwen2: query, key and value always, nothing else
  all,         // gpt2: every linear
  attention,   // gemma: attention_bias for query, key, value and output; the MLP has none
};

// Which sliding windows the family's config can say.
enum class Windows {
  none,       // llama, gpt2, gemma: full attention
  uniform,    // mistral, mixtral, phi3: one sliding_window (or null) for every layer
  per_layer,  // qwen2: one window size, on the layers max_window_layers or layer_types pick
};

// One checkpoint tensor name rule, torch-free: weights/hf_names.cpp turns it into a
// weights::MappingRule (see framework/weights/mapping.h for the fields' meaning).
struct TensorName {
  std::string from;             // regex over the checkpoint name
  std::vector<std::string> to;  // blocks names; several: split in equal parts; none: ignored
  bool transpose = false;       // GPT-2's Conv1D [in, out]
  int64_t split_dim = 0;
  int stack_capture = 0;  // Mixtral experts.{e}: capture N indexes a stacked dim 0
  bool tied = false;      // the output matrix a tied head shares with embeddings.word.weight
  std::vector<int64_t> split_sizes;  // parts of these sizes along split_dim; empty: equal parts
};

// A model the family's keys can state but its classes (or blocks' tables) cannot hold: import
// reports `why` at `key`, export refuses `path` with `what` and `why`.
struct Limit {
  std::string key;   // the config.json key that says it
  std::string path;  // the document field below model.decoder.block, e.g. "mixer.head_groups"
  std::function<bool(const Architecture&)> holds;  // true: expressible
  std::function<std::string(const Architecture&)> what;
  std::string why;
};

struct Family {
  std::string model_type;
  std::string class_name;  // `architectures`: the causal-LM class transformers builds
  int export_order = 0;    // an export without a model type tries the families in this order
  Architecture defaults;   // the transformers config class's defaults
  Keys keys;               // every key the config class reads, for import and export
  std::vector<TensorName> tensors;
  // What the family can express; export refuses the rest with these words.
  bool rotary = true;  // false: learned positions (gpt2), whose names for sizes differ
  std::vector<std::string> rope_types = {"default", "llama3"};
  std::string mlp = "gated";
  std::string normalization = "rms_norm";
  Biases biases = Biases::none;
  Windows windows = Windows::none;
  bool embedding_dropout = false, residual_dropout = false;  // attention dropout: all have it
  bool head_groups = true;          // num_key_value_heads and head_dim (gpt2: neither)
  bool scaled_embeddings = false;   // gemma: embeddings times sqrt(hidden_size), always
  double norm_weight_offset = 0.0;  // gemma: every RMSNorm is x / rms * (1 + weight)
  std::vector<Limit> limits;
};

class Families {
 public:
  // Throws RegistrationError for a model_type registered twice.
  void add(Family family);
  // In export order.
  const std::vector<Family>& all() const { return all_; }
  const Family* find(const std::string& model_type) const;
  // The model types, sorted.
  std::vector<std::string> names() const;

 private:
  std::vector<Family> all_;
};

// Every registered family.
const Families& families();

// "gemma, gpt2, llama, ..." for help texts and "known families" messages; with `last`, the
// last two joined by it ("gemma, gpt2 or llama" for " or ").
std::string family_list(const std::string& last = ", ");

}  // namespace blocks::hf
