#include "blocks/encoders/vision_transformer.h"

#include "blocks/init/constant.h"

namespace blocks {

void VisionTransformerConfig::declare(Fields<VisionTransformerConfig>& f) {
  using C = VisionTransformerConfig;
  f.add("hidden_size", &C::hidden_size, "Width of the tower's residual stream.").required().min(1);
  f.add("image_size", &C::image_size, "Height and width of the images it takes, in pixels.")
      .required()
      .min(1);
  f.add("patch_size", &C::patch_size, "Height and width of one patch, in pixels.")
      .required()
      .min(1);
  f.add("channels", &C::channels, "Colour channels of the pixels (3: RGB).").min(1);
  f.add("patch_bias", &C::patch_bias, "Whether the patch convolution adds a bias (CLIP: no).");
  f.add("class_token", &C::class_token,
        "Whether a learned class token comes before the patches (CLIP: yes; SigLIP: no).");
  f.add("interpolate_positions", &C::interpolate_positions,
        "Whether images of another size (a multiple of patch_size) are taken, the position table "
        "resized bicubically to their patch grid (transformers' interpolate_pos_encoding).",
        Hint::optional);
  f.add("pre_normalization", &C::pre_normalization,
        "Normalization of the embeddings before the body (CLIP's pre_layrnorm); null: none.");
  f.add("body", &C::body, "The layers: a sequence of transformer blocks.").required();
  f.add("post_normalization", &C::post_normalization,
        "Normalization of the selected features (SigLIP's and open_clip's ln_post); null: none. "
        "transformers' CLIP applies its post_layernorm to the pooled class token only, which "
        "no fusion model reads: its configs leave this out.");
  f.add("num_layers", &C::num_layers,
        "Depth of the tower as written (pretrained), which feature_layers count in; the body "
        "keeps only the layers up to the last selected one.",
        Hint::derived)
      .min(1);
  f.add("feature_layers", &C::feature_layers,
        "Hidden states to output, by index as transformers counts them: 0 is the embeddings "
        "(after the pre-norm), i the output of layer i, -1 the last layer, -2 the one before. "
        "Several are concatenated along the features.");
  f.add("drop_class_token", &C::drop_class_token,
        "Whether the class token is left out of the features (LLaVA's `default` strategy).");
  f.add("patch_embedding", &C::patch_embedding,
        "Patch convolution weight [hidden_size, channels, patch_size, patch_size].",
        Hint::optional);
  f.add("patch_embedding_bias", &C::patch_embedding_bias,
        "Patch convolution bias [hidden_size]; only with patch_bias.", Hint::optional);
  f.add("class_embedding", &C::class_embedding, "Class token [hidden_size]; only with class_token.",
        Hint::optional);
  f.add("position_embedding", &C::position_embedding,
        "Position table [class token + patches, hidden_size].", Hint::optional);
  declare_lr_scale(f);
}

int64_t VisionTransformerConfig::patches() const {
  if (patch_size <= 0) return 0;
  const int64_t side = image_size / patch_size;
  return side * side;
}

std::vector<int64_t> VisionTransformerConfig::selected_layers() const {
  const int64_t depth = num_layers.value_or(body ? body->layer_count() : 0);
  std::vector<int64_t> out;
  for (int64_t index : feature_layers) {
    const int64_t layer = index < 0 ? depth + 1 + index : index;
    out.push_back(layer >= 0 && layer <= depth ? layer : -1);
  }
  return out;
}

int64_t VisionTransformerConfig::built_layers() const {
  int64_t built = 0;
  for (int64_t layer : selected_layers()) built = std::max(built, layer);
  return built;
}

int64_t VisionTransformerConfig::output_width() const {
  return hidden_size * static_cast<int64_t>(feature_layers.size());
}

int64_t VisionTransformerConfig::output_tokens() const {
  return patches() + (class_token && !drop_class_token ? 1 : 0);
}

void VisionTransformerConfig::resolve_encoder(ResolveContext& ctx) {
  apply_lr_scale(ctx, lr_scale);
  ctx.hidden_size = hidden_size;
  ctx.learned_positions = true;
  if (!num_layers && body) num_layers = body->layer_count();
  const int64_t built = built_layers();
  if (body && built >= 1 && built < body->layer_count() && !body->keep_first_layers(built))
    ctx.error(*this, "body",
              "feature_layers use the first " + std::to_string(built) + " of " +
                  std::to_string(body->layer_count()) + " layers, but a `" +
                  std::string(body->type().name) +
                  "` body cannot be cut there; write it as a repeat or pattern of single layers");
  ctx.num_layers = body ? body->layer_count() : 0;
  ctx.number_layers = true;

  patch_embedding.shape = {hidden_size, channels, patch_size, patch_size};
  patch_embedding.default_initialization = default_weight_init(ctx);
  if (patch_bias)
    set_default(patch_embedding_bias, WeightConfig{});
  else if (patch_embedding_bias)
    ctx.error(*this, "patch_embedding_bias", "is set but patch_bias is false");
  if (patch_embedding_bias) {
    patch_embedding_bias->shape = {hidden_size};
    patch_embedding_bias->default_initialization = ZerosInitConfig{};
    patch_embedding_bias->multiplied = false;
  }
  if (class_token)
    set_default(class_embedding, WeightConfig{});
  else if (class_embedding)
    ctx.error(*this, "class_embedding", "is set but class_token is false");
  if (class_embedding) {
    class_embedding->shape = {hidden_size};
    class_embedding->default_initialization = default_weight_init(ctx);
    class_embedding->multiplied = false;
  }
  position_embedding.shape = {positions(), hidden_size};
  position_embedding.default_initialization = default_weight_init(ctx);
  position_embedding.multiplied = false;
  if (pre_normalization) pre_normalization->widths = {hidden_size};
  if (post_normalization) post_normalization->widths = {hidden_size};
}

void VisionTransformerConfig::validate(const ResolveContext& ctx) const {
  if (patch_size > 0 && image_size % patch_size != 0)
    ctx.error(*this, "patch_size",
              "image_size " + std::to_string(image_size) + " is not a multiple of patch_size " +
                  std::to_string(patch_size));
  if (feature_layers.empty())
    ctx.error(*this, "feature_layers", "selects no hidden state; give at least one index");
  const int64_t depth = num_layers.value_or(0);
  const auto layers = selected_layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] >= 0) continue;
    ctx.error(*this, "feature_layers[" + std::to_string(i) + "]",
              "index " + std::to_string(feature_layers[i]) + " is outside the " +
                  std::to_string(depth + 1) + " hidden states (0.." + std::to_string(depth) +
                  ", or -" + std::to_string(depth + 1) + "..-1)");
  }
  if (!feature_layers.empty() && built_layers() == 0 &&
      std::all_of(layers.begin(), layers.end(), [](int64_t l) { return l == 0; }))
    ctx.error(*this, "feature_layers",
              "selects only the embeddings (index 0): the body would never compute");
  if (drop_class_token && !class_token)
    ctx.error(*this, "drop_class_token", "is true but the tower has no class token");
}

std::vector<config::FlowStage> VisionTransformerConfig::flow() const {
  return {{.fields = {"patch_embedding", "patch_embedding_bias", "class_embedding",
                      "position_embedding"},
           .parallel = true},
          {.fields = {"pre_normalization"}},
          {.fields = {"body"}},
          {.fields = {"post_normalization"}}};
}

void register_vision_transformer(config::Registry& registry) {
  registry.add<VisionTransformerConfig>();
}

}  // namespace blocks
