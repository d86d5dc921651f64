#include "blocks/mlps/gated.h"

#include "blocks/mlps/activation.h"

namespace blocks {

void GatedMlpConfig::declare(Fields<GatedMlpConfig>& f) {
  f.add("intermediate_size", &GatedMlpConfig::intermediate_size, "Width of the hidden layer.")
      .required()
      .min(1);
  declare_activation(f);
  declare_dropout(f);
  f.add("gate", &GatedMlpConfig::gate, "Gate projection (activated).", Hint::optional);
  f.add("up", &GatedMlpConfig::up, "Up projection (multiplied by the gate).", Hint::optional);
  f.add("down", &GatedMlpConfig::down,
        "Projection back to hidden_size; weights default to scaled_normal.", Hint::optional);
  declare_lr_scale(f);
}

void GatedMlpConfig::resolve(ResolveContext& ctx) {
  set_linear_defaults(gate, ctx);
  set_linear_defaults(up, ctx);
  set_linear_defaults(down, ctx, true);
  const int64_t hidden = ctx.hidden_size.value_or(0);
  gate.set_shape(hidden, intermediate_size);
  up.set_shape(hidden, intermediate_size);
  down.set_shape(intermediate_size, hidden);
  apply_lr_scale(ctx, lr_scale);
}

void register_gated_mlp(config::Registry& registry) { registry.add<GatedMlpConfig>(); }

}  // namespace blocks
