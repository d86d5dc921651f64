// x W^T + b for every linear layer of the modules (Linear, the head, MoE experts). One row on
// the CPU (decoding a token at batch 1) goes through a matrix-vector product: OpenBLAS's sgemv
// streams the weight at 2-2.5x the rate its sgemm reaches with one row (Debian's 0.3.21 has no
// gemm-to-gemv forwarding), and a decoding step is almost all such products.
#pragma once

#include <ATen/Functions.h>

#include <vector>

namespace blocks {

inline at::Tensor affine(const at::Tensor& x, const at::Tensor& weight,
                         const at::Tensor& bias = {}) {
  if (x.device().is_cpu() && x.numel() == x.size(-1) && x.dim() >= 1 &&
      (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) &&
      weight.scalar_type() == x.scalar_type() && weight.dim() == 2) {
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = weight.size(0);
    const at::Tensor row = x.reshape({-1});
    const at::Tensor y = bias.defined() ? at::addmv(bias, weight, row) : at::mv(weight, row);
    return y.view(shape);
  }
  return at::linear(x, weight, bias);
}

}  // namespace blocks
