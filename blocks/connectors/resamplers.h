// Connectors that turn a variable number of feature vectors into a fixed number of latents by
// cross-attention: `perceiver_resampler` (Flamingo, as flamingo_pytorch's PerceiverResampler
// that the KOSMOS-1 reimplementation uses: per layer, latents attend to the media concatenated
// with the latents, then a feed-forward, both residual; a final norm) and `latent_attention`
// (Kosmos-2's Kosmos2ImageToTextProjection after its dense layer: one attention of latent
// queries over the features concatenated with the latents). Both keep the input's width.
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

// One layer of the perceiver resampler: PerceiverAttention and FeedForward.
struct PerceiverLayerConfig : Declared<PerceiverLayerConfig, config::Config> {
  static constexpr std::string_view type_name = "perceiver_layer";
  static constexpr std::string_view type_doc =
      "Latents attend to the media and themselves, then a feed-forward; both residual.";
  Dynamic<NormalizationConfig> media_normalization;
  Dynamic<NormalizationConfig> latent_normalization;
  LinearConfig query, key, value, output;
  Dynamic<NormalizationConfig> mlp_normalization;
  LinearConfig up, down;
  static void declare(Fields<PerceiverLayerConfig>& f);
  std::vector<config::FlowStage> flow() const override;
};

struct PerceiverResamplerConfig : Declared<PerceiverResamplerConfig, ConnectorConfig>,
                                  config::Layout {
  static constexpr std::string_view type_name = "perceiver_resampler";
  static constexpr std::string_view type_doc =
      "Flamingo's perceiver resampler: learned latents cross-attend to the media, depth times.";
  int64_t num_latents = 64;
  int64_t depth = 6;
  int64_t heads = 8;
  int64_t head_size = 64;
  double mlp_multiplier = 4.0;
  std::string activation = "gelu";
  Dynamic<NormalizationConfig> normalization;  // default: layer_norm, of every place
  WeightConfig latents;
  WeightConfig media_position;  // flamingo_pytorch's media_pos_emb row of a single image
  PerceiverLayerConfig layer;   // each of the `depth` layers has weights of its own
  Dynamic<NormalizationConfig> final_normalization;
  double lr_scale = 1.0;

  static void declare(Fields<PerceiverResamplerConfig>& f);
  void resolve(ResolveContext& ctx) override;
  config::Positions positions_of(const config::Config& child) const override;
  bool shares_weights(const config::Config&) const override { return false; }
  bool keeps_width() const override { return true; }
  int64_t output_tokens(int64_t) const override { return num_latents; }
  int64_t inner_width() const { return heads * head_size; }
};

struct LatentAttentionConfig : Declared<LatentAttentionConfig, ConnectorConfig> {
  static constexpr std::string_view type_name = "latent_attention";
  static constexpr std::string_view type_doc =
      "Kosmos-2's latent attention: learned latent queries attend once to the features "
      "concatenated with the latents.";
  int64_t num_latents = 64;
  int64_t heads = 0;
  std::optional<int64_t> head_size;  // default: width / heads
  bool bias = true;
  WeightConfig latents;
  LinearConfig query, key, value, output;
  double lr_scale = 1.0;

  static void declare(Fields<LatentAttentionConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  bool keeps_width() const override { return true; }
  int64_t output_tokens(int64_t) const override { return num_latents; }
};

}  // namespace blocks
