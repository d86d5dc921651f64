// The plain MLP: down(activation(up(x))), as in GPT-2.
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct MlpLayerConfig : Declared<MlpLayerConfig, MlpConfig> {
  static constexpr std::string_view type_name = "mlp";
  static constexpr std::string_view type_doc = "Two linear layers with an activation between.";
  std::optional<int64_t> intermediate_size;  // default: 4 * hidden_size
  std::string activation = "gelu";
  double dropout = 0.0;
  LinearConfig up, down;
  double lr_scale = 1.0;
  static void declare(Fields<MlpLayerConfig>& f);
  void resolve(ResolveContext& ctx) override;
  int64_t inner_width() const override { return intermediate_size.value_or(0); }
};

}  // namespace blocks
