// What an encoder module offers the model that holds it: one media tensor in (pixels), feature
// vectors out, and the input it takes, so that the model can declare it (model_module.h).
#pragma once

#include "blocks/models/model_module.h"

namespace blocks {

class EncoderModule : public torch::nn::Module {
 public:
  // `media` [items, ...] -> features [items, tokens, width], in the encoder's dtype.
  virtual at::Tensor forward(const at::Tensor& media) = 0;
  // The input it takes (`pixel_values`, floating, rank 4), with its doc.
  virtual InputSpec input() const = 0;
};

}  // namespace blocks
