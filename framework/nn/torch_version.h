// The few places where LibTorch 1.13 (Debian, CI) and LibTorch 2.x (the GPU machine) differ,
// behind one small header: fused attention and its `scale` argument, and autocast.
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cmath>
#include <optional>

namespace blocks::nn {

inline constexpr bool kHasFusedAttention = TORCH_VERSION_MAJOR >= 2;

// softmax(q k^T * scale + mask) v over [batch, heads, length, head_size] tensors. `mask` is
// boolean (true: may attend) or additive, broadcastable to [batch, heads, q_len, k_len];
// `causal` (top-left aligned, only with q_len == k_len) is used when `mask` is undefined.
// LibTorch 2.x runs its fused kernels (flash / memory-efficient); 1.13 has only the math
// path, whose fixed 1/sqrt(head_size) scale is corrected on the queries.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask, double dropout, bool causal, double scale) {
  const c10::optional<at::Tensor> attn_mask =
      mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt;
  const bool is_causal = causal && !mask.defined();
#if TORCH_VERSION_MAJOR >= 3 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  return at::scaled_dot_product_attention(q, k, v, attn_mask, dropout, is_causal, scale);
#elif TORCH_VERSION_MAJOR == 2
  const double native = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const at::Tensor qs = scale == native ? q : q * (scale / native);
  return at::scaled_dot_product_attention(qs, k, v, attn_mask, dropout, is_causal);
#else
  // 1.13's math path turns a boolean mask into -inf where false, like 2.x does.
  const double native = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const at::Tensor qs = scale == native ? q : q * (scale / native);
  return std::get<0>(
      at::_scaled_dot_product_attention(qs, k, v, attn_mask, dropout, false, is_causal));
#endif
}

// Autocast of the forward to `dtype` on `device` while alive (torch.autocast). 1.13 and 2.x
// both have the per-device setters used here (2.4 adds set_autocast_enabled(device, ...) and
// deprecates them).
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, at::ScalarType dtype) : cuda_(device == c10::kCUDA) {
    if (cuda_) {
      previous_enabled_ = at::autocast::is_enabled();
      previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(dtype);
      at::autocast::set_enabled(true);
    } else {
      previous_enabled_ = at::autocast::is_cpu_enabled();
      previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(dtype);
      at::autocast::set_cpu_enabled(true);
    }
    at::autocast::increment_nesting();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;
  ~AutocastGuard() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cuda_) {
      at::autocast::set_enabled(previous_enabled_);
      at::autocast::set_autocast_gpu_dtype(previous_dtype_);
    } else {
      at::autocast::set_cpu_enabled(previous_enabled_);
      at::autocast::set_autocast_cpu_dtype(previous_dtype_);
    }
  }

 private:
  bool cuda_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace blocks::nn
