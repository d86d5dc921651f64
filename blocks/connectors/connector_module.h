// What a connector module offers the model that holds it: features [items, tokens, width] in,
// features [items, tokens', width'] out.
#pragma once

#include "blocks/modules.h"

namespace blocks {

class ConnectorModule : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& features) = 0;
};

}  // namespace blocks
