// The early-fusion model module (torchtune's EarlyFusionModel): token embeddings from the
// decoder's table and the fusion embedding, each media item's encoded features in place of one
// run of its placeholders, and the decoder run on the result as input embeddings. Placeholder
// runs are checked against the media, item by item, before anything is replaced: HF checks
// only the total and torchtune drops extra rows, and both train a wrong model without a word.
#pragma once

#include "blocks/connectors/connector_module.h"
#include "blocks/encoders/encoder_module.h"
#include "blocks/linear/linear_module.h"
#include "blocks/models/early_fusion.h"
#include "blocks/models/language_model_module.h"

namespace blocks {

class EarlyFusionModel : public ModelModule {
 public:
  EarlyFusionModel(const EarlyFusionConfig& config, Builder& builder, const std::string& path);
  using ModelModule::forward;
  ModelOutput forward(const ModelInput& input) override;
  // tokens, attention_mask, positions, and each encoder's media (`pixel_values`; an encoder's
  // input is named `NAME.pixel_values` where two encoders take the same input).
  std::vector<InputSpec> inputs() const override;
  // The decoder's, and "encoders.NAME": the features that replaced NAME's placeholders.
  std::vector<std::string> hidden_state_names() const override;
  DecodeCache make_cache(int64_t capacity) const override { return decoder->make_cache(capacity); }

  // The fused input embeddings [batch, tokens, hidden] of `tokens` with `media` by encoder name
  // (an absent or undefined entry: no media of that encoder), and each encoder's features.
  at::Tensor embed(const at::Tensor& tokens, const std::map<std::string, at::Tensor>& media,
                   std::map<std::string, at::Tensor>* features = nullptr);

  struct Part {
    std::shared_ptr<EncoderModule> encoder;
    std::vector<std::shared_ptr<ConnectorModule>> connectors;
    std::string input;  // the name its media go by in ModelInput::named
    int64_t tokens = 0, placeholder = 0;
    std::optional<int64_t> begin, end;
  };
  std::shared_ptr<LanguageModel> decoder;
  std::map<std::string, Part> parts;
  std::shared_ptr<Weight> fusion_embedding;

 private:
  // Throws InputError unless the placeholders of `part` in `tokens` (on the CPU) form exactly
  // `items` runs of part.tokens, each bracketed by its markers; returns the flat indices of the
  // placeholders in row-major order.
  at::Tensor placeholder_indices(const std::string& name, const Part& part,
                                 const at::Tensor& tokens, int64_t items) const;

  const EarlyFusionConfig config_;
  std::string path_;
};

// What a processor does to text (transformers' LlavaProcessor): each single `placeholder` in
// `tokens` [batch, tokens] becomes a run of `count` (the features an image gives); every row must
// hold the same number of them so that rows stay of one length. Throws InputError naming the
// rows otherwise, or when the tokens hold no placeholder.
at::Tensor expand_placeholders(const at::Tensor& tokens, int64_t placeholder, int64_t count);

}  // namespace blocks
