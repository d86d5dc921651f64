// The language model module: embeddings, a decoder, a head. It takes token ids or ready input
// embeddings (how fusion models feed it), a padding mask, positions, memories for
// cross-attention layers and a decoding cache (see model_module.h for the interface).
#pragma once

#include "blocks/embeddings/embeddings_module.h"
#include "blocks/heads/head_module.h"
#include "blocks/models/language_model.h"
#include "blocks/models/model_module.h"

namespace blocks {

class LanguageModel : public ModelModule {
 public:
  LanguageModel(const LanguageModelConfig& config, Builder& builder, const std::string& path);
  using ModelModule::forward;
  ModelOutput forward(const ModelInput& input) override;
  // The same with `hook` running around each of the decoder's leaf blocks (deep fusion).
  ModelOutput forward(const ModelInput& input, LayerHook* hook);
  std::vector<InputSpec> inputs() const override;
  // "embeddings" (the decoder's input), "decoder.N" (the output of the decoder's N-th block),
  // "decoder" (the decoder's output, before the head's normalization).
  std::vector<std::string> hidden_state_names() const override;
  int64_t hidden_size() const { return config_.hidden_size; }
  const LanguageModelConfig& config() const { return config_; }

  std::shared_ptr<Embeddings> embeddings;
  std::shared_ptr<BlockModule> decoder;
  std::shared_ptr<Head> head;

 private:
  Step make_step(const ModelInput& input, const at::Tensor& first) const;

  const LanguageModelConfig config_;
  std::string path_;
};

}  // namespace blocks
