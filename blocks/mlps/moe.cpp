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
  declare_lr_scale(f);
}

void MoeConfig::resolve(ResolveContext& ctx) {
  if (shared_experts > 0) set_default(shared_intermediate_size, intermediate_size);
  set_linear_defaults(router, ctx);
  router.defaults.bias = false;  // routers have no bias, whatever add_linear_biases says
  set_linear_defaults(gate, ctx);
  set_linear_defaults(up, ctx);
  set_linear_defaults(down, ctx, true);
  apply_lr_scale(ctx, lr_scale);
}

void MoeConfig::validate(const ResolveContext& ctx) const {
  if (experts > 0 && top_k > experts)
    ctx.error(
        *this, "top_k",
        "must be <= experts (" + std::to_string(experts) + "), found " + std::to_string(top_k));
  if (shared_intermediate_size && shared_experts == 0)
    ctx.error(*this, "shared_intermediate_size", "is set but shared_experts is 0");
}

void register_moe(config::Registry& registry) { registry.add<MoeConfig>(); }

}  // namespace blocks
