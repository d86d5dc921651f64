// Connectors that project each feature vector to the decoder's width: `mlp` (LLaVA-1.5's
// projector: linear, activation, linear, with biases) and `linear` (KOSMOS-1's projection of
// the resampled image features).
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct MlpConnectorConfig : Declared<MlpConnectorConfig, ConnectorConfig> {
  static constexpr std::string_view type_name = "mlp";
  static constexpr std::string_view type_doc =
      "Two linear layers with an activation between, from the encoder's width to the decoder's "
      "(LLaVA-1.5's mlp2x_gelu projector).";
  std::optional<int64_t> hidden_size;  // default: the output width
  std::string activation = "gelu";
  bool bias = true;
  LinearConfig up, down;
  double lr_scale = 1.0;
  static void declare(Fields<MlpConnectorConfig>& f);
  void resolve(ResolveContext& ctx) override;
};

struct LinearConnectorConfig : Declared<LinearConnectorConfig, ConnectorConfig> {
  static constexpr std::string_view type_name = "linear";
  static constexpr std::string_view type_doc =
      "One linear layer from the encoder's width to the decoder's (KOSMOS-1's image projection).";
  bool bias = false;
  LinearConfig projection;
  double lr_scale = 1.0;
  static void declare(Fields<LinearConnectorConfig>& f);
  void resolve(ResolveContext& ctx) override;
};

}  // namespace blocks
