#include "blocks/mlps/moe.h"

#include "blocks/mlps/activation.h"

namespace blocks {

void MoeConfig::declare(Fields<MoeConfig>& f) {
  f.add("experts", &MoeConfig::experts, "Number of routed experts.").required().min(1);
  f.add("top_k", &MoeConfig::top_k, "Experts each token is sent to.").min(1);
  f.add("intermediate_size", &MoeConfig::intermediate_size, "Hidden width of each expert.")
      .required()
      .min(1);
  declare_activation(f);
  f.add("gated", &MoeConfig::gated, "Whether experts are gated MLPs (SwiGLU) or plain MLPs.");
  f.add("normalize_top_k", &MoeConfig::normalize_top_k,
        "Renormalize the top-k routing weights to sum to 1 (Mixtral).");
  f.add("shared_experts", &MoeConfig::shared_experts,
        "Experts every token goes through (DeepSeekMoE).")
      .min(0);
  f.add("shared_intermediate_size", &MoeConfig::shared_intermediate_size,
        "Hidden width of each shared expert; default: intermediate_size.")
      .min(1);
  f.add("aux_loss_coefficient", &MoeConfig::aux_loss_coefficient,
        "Weight of the load-balancing loss (Switch Transformer).", Hint::optional)
      .min(0);
  f.add("z_loss_coefficient", &MoeConfig::z_loss_coefficient,
        "Weight of the router z-loss (ST-MoE).", Hint::optional)
      .min(0);
  f.add("jitter", &MoeConfig::jitter, "Multiplicative noise on router inputs in training.",
        Hint::optional)
      .min(0);
  f.add("router", &MoeConfig::router, "Router projection to expert logits.", Hint::optional);
  f.add("gate", &MoeConfig::gate, "Gate projection of every expert (gated experts only).",
        Hint::optional);
  f.add("up", &MoeConfig::up, "Up projection of every expert.", Hint::optional);
  f.add("down", &MoeConfig::down, "Down projection of every expert.", Hint::optional);
  f.add("shared_gate", &MoeConfig::shared_gate,
        "Gate projection of the shared experts; only with shared_experts.", Hint::optional);
  f.add("shared_up", &MoeConfig::shared_up,
        "Up projection of the shared experts; only with shared_experts.", Hint::optional);
  f.add("shared_down", &MoeConfig::shared_down,
        "Down projection of the shared experts; only with shared_experts.", Hint::optional);
  declare_lr_scale(f);
}

void MoeConfig::resolve(ResolveContext& ctx) {
  if (shared_experts > 0) set_default(shared_intermediate_size, intermediate_size);
  set_linear_defaults(router, ctx);
  router.defaults.bias = false;  // routers have no bias, whatever add_linear_biases says
  set_linear_defaults(gate, ctx);
  set_linear_defaults(up, ctx);
  set_linear_defaults(down, ctx, true);
  const int64_t hidden = ctx.hidden_size.value_or(0);
  router.set_shape(hidden, experts);
  gate.set_shape(gated ? hidden : 0, gated ? intermediate_size : 0, experts);
  up.set_shape(hidden, intermediate_size, experts);
  down.set_shape(intermediate_size, hidden, experts);
  for (LinearConfig* expert : {&gate, &up, &down}) expert->active_copies = top_k;  // for FLOPs
  if (shared_experts > 0) {
    const int64_t width = ctx.product(*this, "shared_experts", shared_experts,
                                      shared_intermediate_size.value_or(intermediate_size));
    set_default(shared_gate, LinearConfig{});
    set_default(shared_up, LinearConfig{});
    set_default(shared_down, LinearConfig{});
    set_linear_defaults(*shared_gate, ctx);
    set_linear_defaults(*shared_up, ctx);
    set_linear_defaults(*shared_down, ctx, true);
    shared_gate->set_shape(gated ? hidden : 0, gated ? width : 0);
    shared_up->set_shape(hidden, width);
    shared_down->set_shape(width, hidden);
  }
  apply_lr_scale(ctx, lr_scale);
}

void MoeConfig::validate(const ResolveContext& ctx) const {
  if (experts > 0 && top_k > experts)
    ctx.error(
        *this, "top_k",
        "must be <= experts (" + std::to_string(experts) + "), found " + std::to_string(top_k));
  if (shared_experts == 0) {
    const std::pair<const char*, bool> shared_fields[] = {
        {"shared_intermediate_size", shared_intermediate_size.has_value()},
        {"shared_gate", shared_gate.has_value()},
        {"shared_up", shared_up.has_value()},
        {"shared_down", shared_down.has_value()}};
    for (const auto& [field, set] : shared_fields)
      if (set) ctx.error(*this, field, "is set but shared_experts is 0");
  }
}

void register_moe(config::Registry& registry) { registry.add<MoeConfig>(); }

}  // namespace blocks
