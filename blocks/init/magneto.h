// Magneto initialization (Wang et al. 2022, "Foundation Transformers", Sub-LN): Xavier with
// its gain multiplied by gamma = sqrt(log(2N)) for N decoder layers, as torchscale does for
// fc1, fc2, v_proj and out_proj when subln is on (KOSMOS-1's decoder).
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct MagnetoInitConfig : Declared<MagnetoInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "magneto";
  static constexpr std::string_view type_doc =
      "Xavier with gain base_gain * sqrt(log(2 * num_layers)) (Magneto / Sub-LN).";
  double base_gain = 1.0;
  std::string distribution = "uniform";
  int64_t num_layers = 1;  // derived
  double gain = 1.0;       // derived
  static void declare(Fields<MagnetoInitConfig>& f);
  void resolve(ResolveContext& ctx) override;
};

}  // namespace blocks
