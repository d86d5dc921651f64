#include "blocks/mixers/mamba.h"

#include "blocks/init/constant.h"
#include "blocks/init/fan_scaled.h"
#include "blocks/init/state_space.h"
#include "blocks/norms/normalization.h"

namespace blocks {

void MambaConfig::declare(Fields<MambaConfig>& f) {
  f.add("state_size", &MambaConfig::state_size, "State dimension N per channel.").min(1);
  f.add("conv_kernel_size", &MambaConfig::conv_kernel_size,
        "Width of the causal depthwise convolution.")
      .min(1);
  f.add("expansion", &MambaConfig::expansion, "Inner width = expansion * hidden_size.").min(1);
  f.add("dt_rank", &MambaConfig::dt_rank, "Rank of the dt projection; default: ceil(hidden/16).")
      .min(1);
  f.add("conv_bias", &MambaConfig::conv_bias, "Whether the convolution has a bias.");
  f.add("state_normalization", &MambaConfig::state_normalization,
        "Normalization of dt, B and C after the selection projection (Jamba); default: none.");
  f.add("input", &MambaConfig::input, "Input projection to x and z (in_proj).", Hint::optional);
  f.add("selection", &MambaConfig::selection, "Projection of x to dt, B and C (x_proj).",
        Hint::optional);
  f.add("dt", &MambaConfig::dt, "Projection of dt to the inner width (dt_proj); has a bias.",
        Hint::optional);
  f.add("output", &MambaConfig::output, "Output projection (out_proj).", Hint::optional);
  f.add("conv", &MambaConfig::conv, "Depthwise convolution weight.", Hint::optional);
  f.add("a_log", &MambaConfig::a_log, "Log of -A, the state decay.", Hint::optional);
  f.add("d", &MambaConfig::d, "Skip connection D.", Hint::optional);
  declare_lr_scale(f);
}

void MambaConfig::resolve(ResolveContext& ctx) {
  if (!dt_rank && ctx.hidden_size) dt_rank = (*ctx.hidden_size + 15) / 16;
  set_default(state_normalization, NoNormConfig{});
  set_linear_defaults(input, ctx);
  set_linear_defaults(selection, ctx);
  set_linear_defaults(dt, ctx);
  dt.defaults.bias = true;  // the dt bias carries the time-step initialization
  dt.defaults.bias_initialization = MambaDtInitConfig{};
  set_linear_defaults(output, ctx, true);
  KaimingInitConfig conv_init;  // PyTorch's Conv1d default: kaiming_uniform(a = sqrt(5))
  conv_init.distribution = "uniform";
  conv_init.negative_slope = 2.23606797749979;
  conv.default_initialization = conv_init;
  a_log.default_initialization = S4dRealInitConfig{};
  d.default_initialization = OnesInitConfig{};
  inner = ctx.product(*this, "expansion", expansion, ctx.hidden_size.value_or(0));
  const int64_t rank = dt_rank.value_or(0);
  input.set_shape(ctx.hidden_size.value_or(0), ctx.product(*this, "expansion", 2, inner));
  selection.set_shape(inner, rank + ctx.product(*this, "state_size", 2, state_size));
  dt.set_shape(rank, inner);
  output.set_shape(inner, ctx.hidden_size.value_or(0));
  conv.shape = {inner, 1, conv_kernel_size};
  a_log.shape = {inner, state_size};
  a_log.multiplied = false;  // A enters the scan elementwise; forward_flops counts it there
  d.shape = {inner};
  state_normalization->widths = {rank, state_size, state_size};  // dt, B and C
  apply_lr_scale(ctx, lr_scale);
}

std::vector<ParameterShape> MambaConfig::parameters() const {
  if (!conv_bias || inner <= 0) return {};
  return {{.name = "conv.bias",
           .shape = {inner},
           .lr_scale = conv.effective_lr_scale,
           .trainable = conv.trainable}};
}

void register_mamba(config::Registry& registry) { registry.add<MambaConfig>(); }

double MambaConfig::forward_flops(const config::FlopContext& context) const {
  return config::Config::forward_flops(context) +
         2.0 * 3.0 * static_cast<double>(inner) * static_cast<double>(state_size);
}

}  // namespace blocks
