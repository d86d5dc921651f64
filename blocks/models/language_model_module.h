// The language model module and the entry point for programs that link blocks:
//
//   auto doc = config::load_document("configs/llama3-8b.yaml", blocks::registry(), {}, diags);
//   blocks::Model model = blocks::build_model(*doc->model, at::TensorOptions().dtype(at::kBFloat16));
//   nn::initialize(model.parameters, /*seed=*/0);
//   at::Tensor logits = model.module->forward(tokens).logits;
#pragma once

#include "blocks/embeddings/embeddings_module.h"
#include "blocks/heads/head_module.h"
#include "blocks/models/language_model.h"
#include "blocks/modules.h"

namespace blocks {

struct ModelInput {
  at::Tensor tokens;          // int64 [batch, tokens]; or
  at::Tensor embeddings;      // [batch, tokens, hidden]: ready input embeddings (fusion models)
  at::Tensor attention_mask;  // optional [batch, past + tokens]: 1 for real tokens, 0 for padding
  at::Tensor positions;       // optional int64 [batch, tokens]; default past, past + 1, ...
  DecodeCache* cache = nullptr;  // incremental decoding: keys and values of earlier calls
};

struct ModelOutput {
  at::Tensor logits;    // float [batch, tokens, vocab] in the model's dtype
  at::Tensor aux_loss;  // sum of weighted auxiliary losses (MoE), a 0-dim tensor; 0 without
};

class LanguageModel : public torch::nn::Module {
 public:
  LanguageModel(const LanguageModelConfig& config, Builder& builder, const std::string& path);
  ModelOutput forward(const ModelInput& input);
  ModelOutput forward(const at::Tensor& tokens) { return forward(ModelInput{.tokens = tokens}); }
  // A cache for decoding up to `capacity` tokens with this model.
  DecodeCache make_cache(int64_t capacity) const { return DecodeCache(capacity); }
  int64_t hidden_size() const { return hidden_size_; }

  std::shared_ptr<Embeddings> embeddings;
  std::shared_ptr<BlockModule> decoder;
  std::shared_ptr<Head> head;

 private:
  int64_t hidden_size_;
  std::string path_;
};

struct Model {
  std::shared_ptr<LanguageModel> module;
  nn::ParameterTable parameters;
};

// Builds the modules of a resolved model config (parameters uninitialised; see
// nn::initialize). On the meta device nothing is allocated (summaries of 70B configs).
Model build_model(const config::Config& model, at::TensorOptions options = {},
                  const std::string& path = "model");

}  // namespace blocks
