#include "blocks/mlps/activation.h"

namespace blocks {

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names = {"gelu", "gelu_tanh", "quick_gelu", "relu",
                                                 "squared_relu", "silu", "identity"};
  return names;
}

}  // namespace blocks
