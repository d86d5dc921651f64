// Normalizations: layer_norm (Ba et al. 2016), rms_norm (Zhang & Sennrich 2019), none.
// Biases default to zeros and weights to what makes a fresh norm the identity: ones, or
// 1 - weight_offset for an rms_norm whose scale is weight_offset + weight (Gemma's 1 + weight).
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct LayerNormConfig : Declared<LayerNormConfig, NormalizationConfig> {
  static constexpr std::string_view type_name = "layer_norm";
  static constexpr std::string_view type_doc =
      "Layer normalization: (x - mean) / sqrt(var + epsilon) * weight + bias.";
  double epsilon = 1e-5;
  bool bias = true;
  Dynamic<InitializationConfig> weight_initialization;
  Dynamic<InitializationConfig> bias_initialization;
  double lr_scale = 1.0;
  double effective_lr_scale = 1.0;  // derived
  bool trainable = true;            // derived
  static void declare(Fields<LayerNormConfig>& f);
  void resolve(ResolveContext& ctx) override;
  std::vector<ParameterShape> parameters() const override;
};

struct RmsNormConfig : Declared<RmsNormConfig, NormalizationConfig> {
  static constexpr std::string_view type_name = "rms_norm";
  static constexpr std::string_view type_doc =
      "Root-mean-square normalization: x / sqrt(mean(x^2) + epsilon) * (weight_offset + weight).";
  double epsilon = 1e-5;
  double weight_offset = 0.0;
  Dynamic<InitializationConfig> weight_initialization;
  double lr_scale = 1.0;
  double effective_lr_scale = 1.0;  // derived
  bool trainable = true;            // derived
  static void declare(Fields<RmsNormConfig>& f);
  void resolve(ResolveContext& ctx) override;
  std::vector<ParameterShape> parameters() const override;
};

struct NoNormConfig : Declared<NoNormConfig, NormalizationConfig> {
  static constexpr std::string_view type_name = "none";
  static constexpr std::string_view type_doc = "No normalization: the identity.";
  static void declare(Fields<NoNormConfig>&) {}
};

}  // namespace blocks
