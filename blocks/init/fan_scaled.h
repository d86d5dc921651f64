// Initializations scaled by fan-in/fan-out: Kaiming (He et al. 2015) and Xavier (Glorot &
// Bengio 2010), with PyTorch's torch.nn.init gains, so numbers match torch.nn.init exactly.
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct KaimingInitConfig : Declared<KaimingInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "kaiming";
  static constexpr std::string_view type_doc =
      "Kaiming/He: std = gain / sqrt(fan), as torch.nn.init.kaiming_{normal,uniform}_.";
  std::string mode = "fan_in";
  std::string nonlinearity = "leaky_relu";
  double negative_slope = 0.0;
  std::string distribution = "normal";
  static void declare(Fields<KaimingInitConfig>& f);
};

struct XavierInitConfig : Declared<XavierInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "xavier";
  static constexpr std::string_view type_doc =
      "Xavier/Glorot: std = gain * sqrt(2 / (fan_in + fan_out)), as torch.nn.init.xavier_*_.";
  double gain = 1.0;
  std::string distribution = "normal";
  static void declare(Fields<XavierInitConfig>& f);
};

}  // namespace blocks
