// Constant initializations: fill with a value, zeros, ones.
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct FillInitConfig : Declared<FillInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "fill";
  static constexpr std::string_view type_doc = "Every element set to `value`.";
  double value = 0.0;
  static void declare(Fields<FillInitConfig>& f);
};

struct ZerosInitConfig : Declared<ZerosInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "zeros";
  static constexpr std::string_view type_doc = "Every element 0 (biases, LoRA B).";
  static void declare(Fields<ZerosInitConfig>&) {}
};

struct OnesInitConfig : Declared<OnesInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "ones";
  static constexpr std::string_view type_doc = "Every element 1 (normalization weights).";
  static void declare(Fields<OnesInitConfig>&) {}
};

}  // namespace blocks
