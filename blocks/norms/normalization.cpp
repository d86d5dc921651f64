#include "blocks/norms/normalization.h"

#include "blocks/init/constant.h"
#include "blocks/linear/linear.h"

namespace blocks {

namespace {
// The fields every normalization with a learned scale shares, declared once.
template <class C>
void declare_scale(Fields<C>& f) {
  f.add("epsilon", &C::epsilon, "Added to the variance for numerical stability.").above(0);
  f.add("weight_initialization", &C::weight_initialization,
        "Initialization of the scale; null: ones.", Hint::optional);
}
template <class C>
void declare_training(Fields<C>& f) {
  declare_lr_scale(f);
  f.add("effective_lr_scale", &C::effective_lr_scale,
        "Product of lr_scale along the path from the model.", Hint::derived);
  f.add("trainable", &C::trainable, "Whether the parameters train.", Hint::derived);
}
template <class C>
void resolve_training(C& c, ResolveContext& ctx) {
  set_default(c.weight_initialization, OnesInitConfig{});
  apply_lr_scale(ctx, c.lr_scale);
  c.effective_lr_scale = ctx.lr_scale;
  c.trainable = c.effective_lr_scale > 0 && !ctx.peft_active;
}
}  // namespace

void LayerNormConfig::declare(Fields<LayerNormConfig>& f) {
  declare_scale(f);
  f.add("bias", &LayerNormConfig::bias, "Whether a learned bias is added.");
  f.add("bias_initialization", &LayerNormConfig::bias_initialization,
        "Initialization of the bias; null: zeros.", Hint::optional);
  declare_training(f);
}

void LayerNormConfig::resolve(ResolveContext& ctx) {
  if (bias)
    set_default(bias_initialization, ZerosInitConfig{});
  else if (bias_initialization)
    ctx.error(*this, "bias_initialization", "is set but bias is false");
  resolve_training(*this, ctx);
}

void RmsNormConfig::declare(Fields<RmsNormConfig>& f) {
  declare_scale(f);
  declare_training(f);
}

void RmsNormConfig::resolve(ResolveContext& ctx) { resolve_training(*this, ctx); }

void register_normalizations(config::Registry& registry) {
  registry.add<LayerNormConfig>();
  registry.add<RmsNormConfig>();
  registry.add<NoNormConfig>();
}

}  // namespace blocks
