// The vision transformer (Dosovitskiy et al. 2021) in CLIP's conventions, as transformers'
// CLIPVisionTransformer computes it: patches by a strided convolution, an optional class token,
// a learned position table, an optional pre-norm (CLIP's `pre_layrnorm`), a body that is an
// ordinary block sequence (bidirectional attention), and feature selection by hidden-state
// index (0: the embeddings after the pre-norm, i: the output of layer i, -1: the last layer,
// -2: the one before). Layers after the last selected one are not built: they would hold
// weights that never compute (HF LLaVA keeps ViT-L's last layer although nothing reads it).
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct VisionTransformerConfig : Declared<VisionTransformerConfig, EncoderConfig> {
  static constexpr std::string_view type_name = "vision_transformer";
  static constexpr std::string_view type_doc =
      "A ViT in CLIP's conventions: patch embedding, class token, position table, pre-norm, a "
      "block sequence, and feature selection by hidden-state index.";

  int64_t hidden_size = 0;
  int64_t image_size = 0;
  int64_t patch_size = 0;
  int64_t channels = 3;
  bool patch_bias = false;
  bool class_token = true;
  bool interpolate_positions = false;
  Dynamic<NormalizationConfig> pre_normalization;   // absent: none
  Dynamic<BlockConfig> body;
  Dynamic<NormalizationConfig> post_normalization;  // absent: none
  std::optional<int64_t> num_layers;                // derived: the body's depth as written
  std::vector<int64_t> feature_layers = {-1};
  bool drop_class_token = false;
  WeightConfig patch_embedding;
  std::optional<WeightConfig> patch_embedding_bias;  // present iff patch_bias
  std::optional<WeightConfig> class_embedding;       // present iff class_token
  WeightConfig position_embedding;
  double lr_scale = 1.0;

  static void declare(Fields<VisionTransformerConfig>& f);
  void resolve_encoder(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  // Patches, class token and positions side by side, then the pre-norm, the body, the post-norm.
  std::vector<config::FlowStage> flow() const override;
  int64_t output_width() const override;
  int64_t output_tokens() const override;
  int64_t sequence_length() const override { return positions(); }

  int64_t patches() const;  // per image at image_size
  int64_t positions() const { return patches() + (class_token ? 1 : 0); }
  // feature_layers as hidden-state indices in 0..num_layers, and the layers to build (the
  // largest of them); -1 where an index is out of range (reported by validate).
  std::vector<int64_t> selected_layers() const;
  int64_t built_layers() const;
};

}  // namespace blocks
