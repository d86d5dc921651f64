#include "blocks/sequences/gated_cross_attention.h"

#include "blocks/init/constant.h"
#include "blocks/sequences/transformer.h"

namespace blocks {

void GatedCrossAttentionConfig::declare(Fields<GatedCrossAttentionConfig>& f) {
  using C = GatedCrossAttentionConfig;
  f.add("attention", &C::attention, "The cross-attention to the memory.").required();
  f.add("mlp", &C::mlp, "The MLP of the second branch.").required();
  f.add("normalization", &C::normalization, "Normalization before the cross-attention.")
      .required();
  f.add("mlp_normalization", &C::mlp_normalization,
        "Normalization before the MLP; default: same as normalization.");
  f.add("attention_gate", &C::attention_gate,
        "The scalar whose tanh scales the cross-attention branch; initialized to 0.",
        Hint::optional);
  f.add("mlp_gate", &C::mlp_gate,
        "The scalar whose tanh scales the MLP branch; initialized to 0.", Hint::optional);
  f.add("unattended_rows", &C::unattended_rows,
        "Tokens whose memory mask has no attendable entry: skip (both branches give 0: "
        "torchtune) or skip_mlp (only the MLP branch gives 0, attention spans the whole memory: "
        "Hugging Face's mllama) or skip_attention (only the attention branch gives 0: "
        "open_flamingo).")
      .choices({"skip", "skip_mlp", "skip_attention"});
  declare_lr_scale(f);
  f.add("add_linear_biases", &C::add_linear_biases,
        "Shortcut: default `bias` of every linear in this block.", Hint::shortcut);
  f.add("init_std", &C::init_std, "Shortcut: default weight std of every linear in this block.",
        Hint::shortcut)
      .min(0);
}

void GatedCrossAttentionConfig::resolve(ResolveContext& ctx) {
  take_shortcuts(add_linear_biases, init_std, ctx);
  set_default(mlp_normalization, normalization);
  const int64_t hidden = ctx.hidden_size.value_or(0);
  if (normalization) normalization->widths = {hidden};
  if (mlp_normalization) mlp_normalization->widths = {hidden};
  for (WeightConfig* gate : {&attention_gate, &mlp_gate}) {
    gate->shape = {1};  // Hugging Face's mllama stores [1]
    gate->default_initialization = ZerosInitConfig{};
  }
  apply_lr_scale(ctx, lr_scale);
}

std::vector<config::FlowStage> GatedCrossAttentionConfig::flow() const {
  return {{.fields = {"normalization", "attention", "attention_gate"}, .residual = true},
          {.fields = {"mlp_normalization", "mlp", "mlp_gate"}, .residual = true}};
}

void register_gated_cross_attention(config::Registry& registry) {
  registry.add<GatedCrossAttentionConfig>();
}

}  // namespace blocks
