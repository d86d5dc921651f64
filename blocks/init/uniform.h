// Uniform initialization on [low, high).
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct UniformInitConfig : Declared<UniformInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "uniform";
  static constexpr std::string_view type_doc = "Uniform distribution on [low, high).";
  double low = -0.02;
  double high = 0.02;
  static void declare(Fields<UniformInitConfig>& f);
  void validate(const ResolveContext& ctx) const override;
};

}  // namespace blocks
