// Early fusion (torchtune's EarlyFusionModel; LLaVA, KOSMOS-1): a decoder language model and
// named encoders, each followed by connectors; each media item's features replace one run of
// its placeholder token in the token embeddings, and the decoder takes the result as input
// embeddings. The decoder keeps its own parameter names (no state-dict surgery). The toggles
// decoder_trainable, encoders_trainable and fusion_trainable resolve into every parameter's
// `trainable`; fusion parameters are the connectors and the fusion embedding (extra token rows
// for placeholders and begin/end markers, in a table of their own, as torchtune's
// FusionEmbedding).
#pragma once

#include <map>

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

// One encoder of a fusion model and the connectors after it, in order.
struct FusionEncoderConfig : Declared<FusionEncoderConfig, config::Config>, config::ChildContexts {
  static constexpr std::string_view type_name = "fusion_encoder";
  static constexpr std::string_view type_doc =
      "An encoder and the connectors that bring its features to the decoder's width.";
  Dynamic<EncoderConfig> encoder;
  std::vector<Dynamic<ConnectorConfig>> connectors;
  int64_t tokens = 0;  // derived: feature vectors per media item after the connectors

  // Set by the fusion model before this config resolves; not fields.
  bool encoder_frozen = false;
  bool connectors_frozen = false;
  int64_t decoder_width = 0;
  // Deep fusion's cross-attention takes features of any width: only early fusion requires the
  // decoder's.
  bool any_width = false;

  static void declare(Fields<FusionEncoderConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void enter(const config::Config& child, ResolveContext& child_ctx) const override;
  // The width of the features that leave the last connector, from the fields as written.
  int64_t output_width() const;
  // Feature vectors per media item after the connectors, from the fields as written.
  int64_t output_tokens() const;
  // Forward FLOPs of one media item: the encoder at its sequence length, then each connector
  // at the features it takes (the resamplers' linears by the default matrix rule, so their
  // figure is approximate).
  double media_flops() const;
  // The encoder, then each connector.
  std::vector<config::FlowStage> flow() const override;
};

// What a fusion model reads off its decoder, as written: 0s for a decoder that is not a
// language model (check_fusion_decoder reports it).
struct DecoderShape {
  int64_t width = 0, vocab_size = 0, layers = 0;
};
DecoderShape decoder_shape(const Dynamic<ModelConfig>& decoder);
// An error at `owner`'s `decoder` unless it is a language_model.
void check_fusion_decoder(const Dynamic<ModelConfig>& decoder, const config::Config& owner,
                          const ResolveContext& ctx);

// A fusion model's extra token rows: present (default-made) iff `rows` > 0, an error at
// `owner`'s fusion_embedding when set without rows; [rows, width], initialized as embeddings.
void resolve_fusion_embedding(std::optional<WeightConfig>& embedding, int64_t rows, int64_t width,
                              const config::Config& owner, ResolveContext& ctx);

struct EarlyFusionConfig : Declared<EarlyFusionConfig, ModelConfig>, config::ChildContexts {
  static constexpr std::string_view type_name = "early_fusion";
  static constexpr std::string_view type_doc =
      "A decoder language model whose input embeddings take named encoders' features in place "
      "of placeholder tokens (LLaVA, KOSMOS-1).";
  Dynamic<ModelConfig> decoder;
  std::map<std::string, FusionEncoderConfig> encoders;
  std::map<std::string, int64_t> encoder_tokens;
  std::map<std::string, int64_t> begin_tokens;
  std::map<std::string, int64_t> end_tokens;
  int64_t fusion_vocab_size = 0;
  std::optional<WeightConfig> fusion_embedding;  // present iff fusion_vocab_size > 0
  bool decoder_trainable = true;
  std::map<std::string, bool> encoders_trainable;  // `false` alone: every encoder
  bool fusion_trainable = true;
  double lr_scale = 1.0;

  static void declare(Fields<EarlyFusionConfig>& f);
  // `encoders_trainable: BOOL` becomes one entry per encoder, so resolved texts show a dict.
  static void preprocess(config::Node& node, config::ParseContext& ctx);
  void resolve_model(ResolveContext& ctx) override;
  void enter(const config::Config& child, ResolveContext& child_ctx) const override;
  void validate(const ResolveContext& ctx) const override;
  // Encoders side by side, then the decoder.
  std::vector<config::FlowStage> flow() const override;
  std::vector<const config::Config*> per_token_parts() const override;
  // Each encoder at its sequence length, and each connector at the features it takes (the
  // resamplers' linears by the default matrix rule, so their figure is approximate).
  std::vector<std::pair<std::string, double>> media_flops() const override;

  int64_t decoder_width() const { return decoder_shape(decoder).width; }
  int64_t decoder_vocab_size() const { return decoder_shape(decoder).vocab_size; }
};

}  // namespace blocks
