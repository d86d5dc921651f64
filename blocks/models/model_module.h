// The one interface of every model type, and the entry point for programs that link blocks:
//
//   config::Diagnostics diagnostics;
//   auto doc = config::load_document("configs/llama3-8b.yaml", blocks::registry(), diagnostics);
//   blocks::Model model = blocks::build_model(*doc->model,
//   at::TensorOptions().dtype(at::kBFloat16)); nn::initialize(model.parameters, /*seed=*/0);
//   blocks::ModelOutput out = model.module->forward({.tokens = tokens});
//
// A model takes named input tensors (token ids or ready embeddings, masks, positions, and
// modality inputs such as `pixel_values`), named memories for cross-attention, and a decoding
// cache; it lists what it takes (inputs()), so callers and `blockc forward` can check a file's
// tensors by name instead of ignoring what does not fit.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "blocks/modules.h"

namespace blocks {

struct ModelInput {
  at::Tensor tokens;          // int64 [batch, tokens]; or
  at::Tensor embeddings;      // [batch, tokens, hidden]: ready input embeddings (fusion models)
  at::Tensor attention_mask;  // optional [batch, past + tokens]: 1 for real tokens, 0 for padding
  at::Tensor positions;       // optional int64 [batch, tokens]; default past, past + 1, ...
  std::map<std::string, at::Tensor> named;  // other inputs by name (`pixel_values`)
  std::map<std::string, Memory> memories;   // for cross-attention layers, by name
  DecodeCache* cache = nullptr;             // incremental decoding: what earlier calls left
  // Logits of the last this many positions only (Hugging Face's logits_to_keep: a prefill
  // needs the last one, and the head over a long prompt is a fifth of its work); 0: all.
  int64_t logits_to_keep = 0;
  // Hidden states to return in ModelOutput::hidden_states, by name (see the model's
  // hidden_state_names()).
  std::vector<std::string> hidden_states;

  // Every given tensor with its name, the four fields above included.
  std::vector<std::pair<std::string, at::Tensor>> tensors() const;
  // Inputs from named tensors (a safetensors file): `tokens`, `embeddings`, `attention_mask` and
  // `positions` go to their fields, Hugging Face's `input_ids` and `inputs_embeds` to tokens
  // and embeddings, everything else to `named`. Throws nn::InputError when a name and its alias
  // are both given.
  static ModelInput from_tensors(std::map<std::string, at::Tensor> tensors);
};

struct ModelOutput {
  at::Tensor logits;    // float [batch, tokens, vocab] in the model's dtype
  at::Tensor aux_loss;  // sum of weighted auxiliary losses (MoE), a 0-dim tensor; 0 without
  std::map<std::string, at::Tensor> hidden_states;  // those ModelInput::hidden_states named
};

// One input a model takes: its name, element type, rank, and whether it must be given. Inputs
// of one `one_of` group exclude each other and one of them must be given (tokens | embeddings).
struct InputSpec {
  enum class Type { integer, floating, mask };  // mask: bool, or 1 / 0 in any element type
  std::string name;
  Type type = Type::floating;
  int64_t rank = 0;
  bool required = false;
  std::string one_of;
  std::string doc;
};
std::string to_string(InputSpec::Type type);

class ModelModule : public torch::nn::Module {
 public:
  virtual ModelOutput forward(const ModelInput& input) = 0;
  ModelOutput forward(const at::Tensor& tokens) { return forward(ModelInput{.tokens = tokens}); }
  // The inputs this model takes.
  virtual std::vector<InputSpec> inputs() const = 0;
  // The hidden states this model can return, in order.
  virtual std::vector<std::string> hidden_state_names() const = 0;
  // A cache for decoding up to `capacity` tokens with this model.
  virtual DecodeCache make_cache(int64_t capacity) const { return DecodeCache(capacity); }
  // Checks `input` against inputs() and hidden_state_names(): every given tensor must be an
  // input of this model, with its type and rank; required inputs and one of each group must be
  // there. Throws nn::InputError naming `path` and the tensor.
  void check_inputs(const ModelInput& input, const std::string& path) const;
};

struct Model {
  std::shared_ptr<ModelModule> module;
  nn::ParameterTable parameters;
};

// Builds the module of a resolved model config of any registered model type (parameters
// uninitialised; see nn::initialize). On the meta device nothing is allocated (summaries of 70B
// configs).
Model build_model(const config::Config& model, at::TensorOptions options = {},
                  const std::string& path = "model");
// The same with a module registry of the program's own (types of its own next to blocks').
Model build_model(const config::Config& model, const nn::ModuleRegistry& modules,
                  at::TensorOptions options = {}, const std::string& path = "model");

}  // namespace blocks
