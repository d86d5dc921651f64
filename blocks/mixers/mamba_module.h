// The selective scan of the mamba mixer (Gu & Dao 2023, selective_scan_ref in mamba_ssm),
// exposed so tests can check the chunked scan the module uses against the per-step one.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace blocks {

// h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t, y_t = C_t . h_t + D u_t, per channel.
// Shapes: u, delta [batch, inner, T]; A [inner, N]; B, C [batch, N, T]; D [inner]. Returns y
// [batch, inner, T] in float32 (the scan always runs in float32). `initial_state` [batch,
// inner, N] is h_{-1} (zeros when undefined); `final_state`, when given, receives h_{T-1}.
// Chunked: a loop over chunks of `chunk` tokens, each computed at once with exact, stable
// decays exp(cs_t - cs_s) <= 1 (cs the cumulative sum of delta A inside the chunk).
at::Tensor selective_scan(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                          const at::Tensor& B, const at::Tensor& C, const at::Tensor& D,
                          at::Tensor* final_state = nullptr, int64_t chunk = 32,
                          const at::Tensor& initial_state = {});

// The same scan as a loop over single tokens (the reference's formulation); `chunk` is unused.
at::Tensor selective_scan_naive(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                const at::Tensor& B, const at::Tensor& C, const at::Tensor& D,
                                at::Tensor* final_state = nullptr, int64_t chunk = 32,
                                const at::Tensor& initial_state = {});

}  // namespace blocks
