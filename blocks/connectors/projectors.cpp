#include "blocks/connectors/projectors.h"

#include "blocks/connectors/widths.h"
#include "blocks/mlps/activation.h"

namespace blocks {
void MlpConnectorConfig::declare(Fields<MlpConnectorConfig>& f) {
  declare_connector_widths(f, "Width of the features out: the decoder's.");
  f.add("hidden_size", &MlpConnectorConfig::hidden_size,
        "Width between the two layers; default: the output width.")
      .min(1);
  declare_activation(f);
  f.add("bias", &MlpConnectorConfig::bias, "Whether both layers add a bias (LLaVA: yes).");
  f.add("up", &MlpConnectorConfig::up, "The first layer, input width to hidden_size.",
        Hint::optional);
  f.add("down", &MlpConnectorConfig::down, "The second layer, hidden_size to the output width.",
        Hint::optional);
  declare_lr_scale(f);
}

void MlpConnectorConfig::resolve(ResolveContext& ctx) {
  set_default(hidden_size, output_width);
  ctx.add_linear_biases = bias;
  set_linear_defaults(up, ctx);
  set_linear_defaults(down, ctx);
  up.set_shape(input_width, *hidden_size);
  down.set_shape(*hidden_size, output_width);
  apply_lr_scale(ctx, lr_scale);
}

void LinearConnectorConfig::declare(Fields<LinearConnectorConfig>& f) {
  declare_connector_widths(f, "Width of the features out: the decoder's.");
  f.add("bias", &LinearConnectorConfig::bias, "Whether the layer adds a bias.");
  f.add("projection", &LinearConnectorConfig::projection,
        "The layer, input width to output width.", Hint::optional);
  declare_lr_scale(f);
}

void LinearConnectorConfig::resolve(ResolveContext& ctx) {
  ctx.add_linear_biases = bias;
  set_linear_defaults(projection, ctx);
  projection.set_shape(input_width, output_width);
  apply_lr_scale(ctx, lr_scale);
}

void register_connector_projectors(config::Registry& registry) {
  registry.add<MlpConnectorConfig>();
  registry.add<LinearConnectorConfig>();
}

}  // namespace blocks
