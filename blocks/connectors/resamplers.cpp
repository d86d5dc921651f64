#include "blocks/connectors/resamplers.h"

#include "blocks/connectors/widths.h"
#include "blocks/mlps/activation.h"
#include "blocks/norms/normalization.h"

namespace blocks {

void PerceiverLayerConfig::declare(Fields<PerceiverLayerConfig>& f) {
  using C = PerceiverLayerConfig;
  f.add("media_normalization", &C::media_normalization, "Norm of the media (norm_media).",
        Hint::optional);
  f.add("latent_normalization", &C::latent_normalization, "Norm of the latents (norm_latents).",
        Hint::optional);
  f.add("query", &C::query, "Query projection of the latents.", Hint::optional);
  f.add("key", &C::key, "Key projection of media and latents.", Hint::optional);
  f.add("value", &C::value, "Value projection of media and latents.", Hint::optional);
  f.add("output", &C::output, "Output projection.", Hint::optional);
  f.add("mlp_normalization", &C::mlp_normalization, "Norm before the feed-forward.",
        Hint::optional);
  f.add("up", &C::up, "Feed-forward projection up.", Hint::optional);
  f.add("down", &C::down, "Feed-forward projection down.", Hint::optional);
}

std::vector<config::FlowStage> PerceiverLayerConfig::flow() const {
  return {{.fields = {"media_normalization", "latent_normalization"}, .parallel = true},
          {.fields = {"query", "key", "value"}, .parallel = true},
          {.fields = {"output"}, .residual = true},
          {.fields = {"mlp_normalization", "up", "down"}, .residual = true}};
}

void PerceiverResamplerConfig::declare(Fields<PerceiverResamplerConfig>& f) {
  using C = PerceiverResamplerConfig;
  declare_connector_widths(f, "Width of the latents out: the input's.");
  f.add("num_latents", &C::num_latents, "Latents out per media item.").min(1);
  f.add("depth", &C::depth, "Layers of latent cross-attention and feed-forward.").min(1);
  f.add("heads", &C::heads, "Attention heads.").min(1);
  f.add("head_size", &C::head_size, "Width of each head (dim_head).").min(1);
  f.add("mlp_multiplier", &C::mlp_multiplier, "Feed-forward width over the input width (ff_mult).")
      .above(0);
  declare_activation(f);
  f.add("normalization", &C::normalization,
        "Default of every norm (media, latents, feed-forward, final); default: layer_norm.",
        Hint::optional);
  f.add("latents", &C::latents, "The learned latents [num_latents, width].", Hint::optional);
  f.add("media_position", &C::media_position,
        "Media position embedding [1, width] added to the features (one image per item).",
        Hint::optional);
  f.add("layer", &C::layer, "Each layer (depth of them, each with weights of its own).",
        Hint::optional);
  f.add("final_normalization", &C::final_normalization, "Norm of the latents out.",
        Hint::optional);
  declare_lr_scale(f);
}

void PerceiverResamplerConfig::resolve(ResolveContext& ctx) {
  apply_lr_scale(ctx, lr_scale);
  output_width = input_width;
  const int64_t width = input_width;
  const int64_t inner = ctx.product(*this, "head_size", heads, head_size);
  const int64_t hidden = static_cast<int64_t>(mlp_multiplier * static_cast<double>(width));
  set_default(normalization, LayerNormConfig{});
  for (auto* norm : {&layer.media_normalization, &layer.latent_normalization,
                     &layer.mlp_normalization, &final_normalization}) {
    set_default(*norm, normalization);
    (*norm)->widths = {width};
  }
  normalization->widths = {};  // a default only: it normalizes nothing itself
  latents.shape = {num_latents, width};
  latents.default_initialization = default_weight_init(ctx);
  latents.multiplied = false;
  media_position.shape = {1, width};
  media_position.default_initialization = default_weight_init(ctx);
  media_position.multiplied = false;
  // flamingo_pytorch's linears have no biases.
  ctx.add_linear_biases = ctx.add_linear_biases.value_or(false);
  for (auto* linear : {&layer.query, &layer.key, &layer.value, &layer.output, &layer.up,
                       &layer.down})
    set_linear_defaults(*linear, ctx);
  layer.query.set_shape(width, inner);
  layer.key.set_shape(width, inner);
  layer.value.set_shape(width, inner);
  layer.output.set_shape(inner, width);
  layer.up.set_shape(width, hidden);
  layer.down.set_shape(hidden, width);
}

config::Positions PerceiverResamplerConfig::positions_of(const config::Config& child) const {
  if (&child == &layer) return {{{0, 1, depth}}};
  return config::Positions::one(0);
}

void LatentAttentionConfig::declare(Fields<LatentAttentionConfig>& f) {
  using C = LatentAttentionConfig;
  declare_connector_widths(f, "Width of the latents out: the input's.");
  f.add("num_latents", &C::num_latents, "Latents out per media item (latent_query_num).").min(1);
  f.add("heads", &C::heads, "Attention heads.").required().min(1);
  f.add("head_size", &C::head_size, "Width of each head; default: width / heads.").min(1);
  f.add("bias", &C::bias, "Whether the projections add biases (Kosmos-2: yes).");
  f.add("latents", &C::latents, "The learned latent queries [num_latents, width].",
        Hint::optional);
  f.add("query", &C::query, "Query projection of the latents.", Hint::optional);
  f.add("key", &C::key, "Key projection of features and latents.", Hint::optional);
  f.add("value", &C::value, "Value projection of features and latents.", Hint::optional);
  f.add("output", &C::output, "Output projection.", Hint::optional);
  declare_lr_scale(f);
}

void LatentAttentionConfig::resolve(ResolveContext& ctx) {
  apply_lr_scale(ctx, lr_scale);
  output_width = input_width;
  const int64_t width = input_width;
  if (!head_size && heads > 0 && width % heads == 0) head_size = width / heads;
  const int64_t inner = ctx.product(*this, "head_size", heads, head_size.value_or(0));
  latents.shape = {num_latents, width};
  latents.default_initialization = default_weight_init(ctx);
  latents.multiplied = false;
  ctx.add_linear_biases = bias;
  for (auto* linear : {&query, &key, &value, &output}) set_linear_defaults(*linear, ctx);
  query.set_shape(width, inner);
  key.set_shape(width, inner);
  value.set_shape(width, inner);
  output.set_shape(inner, width);
}

void LatentAttentionConfig::validate(const ResolveContext& ctx) const {
  if (!head_size && heads > 0)
    ctx.error(*this, "heads",
              "the width " + std::to_string(input_width) + " is not a multiple of " +
                  std::to_string(heads) + " heads; set head_size");
}

void register_connector_resamplers(config::Registry& registry) {
  registry.add<PerceiverResamplerConfig>();
  registry.add<LatentAttentionConfig>();
}

}  // namespace blocks
