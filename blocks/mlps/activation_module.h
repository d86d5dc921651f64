// Activation functions by name (the names activation_names() accepts), resolved once at build
// time so forward calls do not compare strings.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace blocks {

enum class Activation { gelu, gelu_tanh, quick_gelu, relu, squared_relu, silu, identity };

Activation activation_from_name(const std::string& name);
const char* activation_name(Activation activation);

inline at::Tensor activate(Activation activation, const at::Tensor& x) {
  switch (activation) {
    case Activation::gelu: return at::gelu(x);
    case Activation::gelu_tanh: return at::gelu(x, "tanh");
    // OpenAI CLIP's approximation, x * sigmoid(1.702 x) (transformers' QuickGELUActivation).
    case Activation::quick_gelu: return x * at::sigmoid(1.702 * x);
    case Activation::relu: return at::relu(x);
    case Activation::squared_relu: return at::relu(x).square();
    case Activation::silu: return at::silu(x);
    case Activation::identity: return x;
  }
  return x;
}

}  // namespace blocks
