#include "blocks/mlps/mlp.h"

namespace blocks {

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names = {"gelu",         "gelu_tanh", "relu",
                                                 "squared_relu", "silu",      "identity"};
  return names;
}

namespace {
template <class C>
void declare_common(Fields<C>& f) {
  f.add("activation", &C::activation, "Activation function.").choices(activation_names());
  f.add("dropout", &C::dropout, "Dropout after the activation.", Hint::optional).min(0).max(0.999);
}
template <class C>
void declare_lr(Fields<C>& f) {
  f.add("lr_scale", &C::lr_scale, "Learning-rate multiplier; 0 freezes.", Hint::optional).min(0);
}
}  // namespace

void MlpLayerConfig::declare(Fields<MlpLayerConfig>& f) {
  f.add("intermediate_size", &MlpLayerConfig::intermediate_size,
        "Width of the hidden layer; default: 4 * hidden_size.")
      .min(1);
  declare_common(f);
  f.add("up", &MlpLayerConfig::up, "Projection to the hidden layer.", Hint::optional);
  f.add("down", &MlpLayerConfig::down,
        "Projection back to hidden_size; weights default to scaled_normal.", Hint::optional);
  declare_lr(f);
}

void MlpLayerConfig::resolve(ResolveContext& ctx) {
  if (!intermediate_size && ctx.hidden_size) intermediate_size = 4 * *ctx.hidden_size;
  set_linear_defaults(up, ctx);
  set_linear_defaults(down, ctx, true);
  apply_lr_scale(ctx, lr_scale);
}

void GatedMlpConfig::declare(Fields<GatedMlpConfig>& f) {
  f.add("intermediate_size", &GatedMlpConfig::intermediate_size, "Width of the hidden layer.")
      .required()
      .min(1);
  declare_common(f);
  f.add("gate", &GatedMlpConfig::gate, "Gate projection (activated).", Hint::optional);
  f.add("up", &GatedMlpConfig::up, "Up projection (multiplied by the gate).", Hint::optional);
  f.add("down", &GatedMlpConfig::down,
        "Projection back to hidden_size; weights default to scaled_normal.", Hint::optional);
  declare_lr(f);
}

void GatedMlpConfig::resolve(ResolveContext& ctx) {
  set_linear_defaults(gate, ctx);
  set_linear_defaults(up, ctx);
  set_linear_defaults(down, ctx, true);
  apply_lr_scale(ctx, lr_scale);
}

void MoeConfig::declare(Fields<MoeConfig>& f) {
  f.add("experts", &MoeConfig::experts, "Number of routed experts.").required().min(1);
  f.add("top_k", &MoeConfig::top_k, "Experts each token is sent to.").min(1);
  f.add("intermediate_size", &MoeConfig::intermediate_size, "Hidden width of each expert.")
      .required()
      .min(1);
  f.add("activation", &MoeConfig::activation, "Activation function.").choices(activation_names());
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
  f.add("lr_scale", &MoeConfig::lr_scale, "Learning-rate multiplier; 0 freezes.", Hint::optional)
      .min(0);
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

void register_mlps(config::Registry& registry) {
  registry.add<MlpLayerConfig>();
  registry.add<GatedMlpConfig>();
  registry.add<MoeConfig>();
}

}  // namespace blocks
