// Magneto initialization (Wang et al. 2022, "Foundation Transformers", Sub-LN): a base draw
// scaled by gamma = sqrt(log(2N)) for N decoder layers, as torchscale's Decoder does for fc1,
// fc2, v_proj and out_proj when subln is on (KOSMOS-1's decoder). Two bases, because the paper
// and torchscale's code differ: the paper's is Xavier (gain 1/sqrt(2) for q, k, v, as in
// torchscale's MultiheadAttention.reset_parameters), but no torchscale module calls that
// method, so what its Decoder really scales is nn.Linear's own U(+-1/sqrt(fan_in)), weights and
// biases alike (`linear_default`).
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct MagnetoInitConfig : Declared<MagnetoInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "magneto";
  static constexpr std::string_view type_doc =
      "A base draw (Xavier, or nn.Linear's default) scaled by base_gain * sqrt(log(2 * "
      "num_layers)) (Magneto / Sub-LN).";
  std::string base = "xavier";
  double base_gain = 1.0;
  std::string distribution = "uniform";
  int64_t num_layers = 1;  // derived
  double gain = 1.0;       // derived
  static void declare(Fields<MagnetoInitConfig>& f);
  void resolve(ResolveContext& ctx) override;
};

}  // namespace blocks
