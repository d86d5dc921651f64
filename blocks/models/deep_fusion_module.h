// The deep-fusion model module (torchtune's DeepFusionModel): the encoder's features, flattened
// per batch row, become the memory 'encoder'; the decoder runs on the token embeddings (with the
// fusion embedding's rows) and the fusion layers run around its layers through a LayerHook, so
// the decoder module is the plain language model, unchanged.
//
// Decoding: a step that gives the encoder's input computes the memory, and each cross-attention
// layer caches its keys and values; later steps give only tokens. A step without a memory mask
// reuses the last token's mask row of the step that gave one (as torchtune's and Hugging Face's
// generation loops do). A model given no encoder input and holding no memory in its cache runs
// text only: the fusion layers are skipped, as both torchtune and Hugging Face do.
#pragma once

#include "blocks/connectors/connector_module.h"
#include "blocks/encoders/encoder_module.h"
#include "blocks/linear/linear_module.h"
#include "blocks/models/deep_fusion.h"
#include "blocks/models/language_model_module.h"

namespace blocks {

class DeepFusionModel : public ModelModule, public LayerHook {
 public:
  DeepFusionModel(const DeepFusionConfig& config, Builder& builder, const std::string& path);
  using ModelModule::forward;
  ModelOutput forward(const ModelInput& input) override;
  // tokens, attention_mask, positions, the encoder's input per batch row ([batch, items, ...]),
  // and the memory mask as memory_mask [batch, tokens, memory tokens] or Hugging Face mllama's
  // cross_attention_mask [batch, tokens, images, tiles].
  std::vector<InputSpec> inputs() const override;
  // The decoder's, and "encoder": the memory [batch, memory tokens, width].
  std::vector<std::string> hidden_state_names() const override;
  DecodeCache make_cache(int64_t capacity) const override { return decoder->make_cache(capacity); }

  at::Tensor before(int64_t layer, const at::Tensor& x, Step& step) override;
  at::Tensor after(int64_t layer, const at::Tensor& x, Step& step) override;

  std::shared_ptr<LanguageModel> decoder;
  std::shared_ptr<EncoderModule> encoder;
  std::vector<std::shared_ptr<ConnectorModule>> connectors;
  std::map<int64_t, std::shared_ptr<BlockModule>> fusion_layers;  // by decoder layer
  std::shared_ptr<Weight> fusion_embedding;

 private:
  at::Tensor run_fusion(int64_t layer, const at::Tensor& x, Step& step);
  // The memory mask of this call as bool [batch, tokens, memory], from either input; undefined
  // when neither is given.
  at::Tensor given_mask(const ModelInput& input, int64_t batch, int64_t tokens,
                        int64_t memory_tokens) const;

  const DeepFusionConfig config_;
  std::string path_, input_name_;
  int64_t item_tokens_ = 0, memory_width_ = 0;
  bool after_ = false;
};

}  // namespace blocks
