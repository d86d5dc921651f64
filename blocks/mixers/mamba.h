// Mamba selective state-space mixer (Gu & Dao 2023; reference mamba_simple.py). Linear names:
// `input` (in_proj: x and z), `selection` (x_proj: dt, B, C), `dt` (dt_proj), `output`.
// `state_normalization` normalizes dt, B and C after x_proj, as Jamba does (Lieber et al. 2024).
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct MambaConfig : Declared<MambaConfig, MixerConfig> {
  static constexpr std::string_view type_name = "mamba";
  static constexpr std::string_view type_doc = "Mamba selective state-space model (Mamba-1).";

  int64_t state_size = 16;
  int64_t conv_kernel_size = 4;
  int64_t expansion = 2;
  std::optional<int64_t> dt_rank;  // default: ceil(hidden_size / 16)
  bool conv_bias = true;
  Dynamic<NormalizationConfig> state_normalization;  // default: none
  LinearConfig input, selection, dt, output;
  WeightConfig conv, a_log, d;
  double lr_scale = 1.0;

  int64_t inner = 0;  // expansion * hidden_size, set during resolution; not a field

  static void declare(Fields<MambaConfig>& f);
  void resolve(ResolveContext& ctx) override;
  int64_t inner_width() const override { return inner; }
  // in_proj, the causal convolution, x_proj, dt_proj, (the scan), out_proj.
  std::vector<config::FlowStage> flow() const override {
    return {{.fields = {"input", "conv", "selection", "dt", "output"}}};
  }
  // The convolution's bias, which has no config of its own (it trains like `conv`).
  std::vector<ParameterShape> parameters() const override;
  // The selective scan, about 3 x inner x state_size multiply-accumulates per token (dA * h,
  // dB * x, C . h); the projections and the convolution are their configs' own.
  double forward_flops(const config::FlopContext& context) const override;
};

}  // namespace blocks
