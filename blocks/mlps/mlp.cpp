#include "blocks/mlps/mlp.h"

#include "blocks/mlps/activation.h"

namespace blocks {

void MlpLayerConfig::declare(Fields<MlpLayerConfig>& f) {
  f.add("intermediate_size", &MlpLayerConfig::intermediate_size,
        "Width of the hidden layer; default: 4 * hidden_size.")
      .min(1);
  declare_activation(f);
  declare_dropout(f);
  f.add("up", &MlpLayerConfig::up, "Projection to the hidden layer.", Hint::optional);
  f.add("down", &MlpLayerConfig::down,
        "Projection back to hidden_size; weights default to scaled_normal.", Hint::optional);
  declare_lr_scale(f);
}

void MlpLayerConfig::resolve(ResolveContext& ctx) {
  if (!intermediate_size && ctx.hidden_size)
    intermediate_size = ctx.product(*this, "intermediate_size", 4, *ctx.hidden_size);
  set_linear_defaults(up, ctx);
  set_linear_defaults(down, ctx, true);
  up.set_shape(ctx.hidden_size.value_or(0), intermediate_size.value_or(0));
  down.set_shape(intermediate_size.value_or(0), ctx.hidden_size.value_or(0));
  apply_lr_scale(ctx, lr_scale);
}

void register_mlp(config::Registry& registry) { registry.add<MlpLayerConfig>(); }

}  // namespace blocks
