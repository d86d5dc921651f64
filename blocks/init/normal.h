// Normal initializations. `scaled_normal` divides the standard deviation by sqrt(2 * layers),
// GPT-2's scheme for projections that write into the residual stream (Radford et al. 2019, 2.3).
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct NormalInitConfig : Declared<NormalInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "normal";
  static constexpr std::string_view type_doc =
      "Normal distribution N(mean, std^2), optionally truncated.";
  double mean = 0.0;
  double std = 0.02;
  std::optional<double> truncation;  // in standard deviations
  static void declare(Fields<NormalInitConfig>& f);
};

struct ScaledNormalInitConfig : Declared<ScaledNormalInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "scaled_normal";
  static constexpr std::string_view type_doc =
      "Normal with std / sqrt(2 * num_layers) (GPT-2 residual projections).";
  double mean = 0.0;
  double std = 0.02;
  std::optional<double> truncation;
  int64_t num_layers = 1;  // derived: blocks in the model's decoder
  static void declare(Fields<ScaledNormalInitConfig>& f);
  void resolve(ResolveContext& ctx) override;
  // The standard deviation actually used.
  double scaled_std() const;
};

}  // namespace blocks
