#include "blocks/init/magneto.h"

#include <cmath>

namespace blocks {

void MagnetoInitConfig::declare(Fields<MagnetoInitConfig>& f) {
  f.add("base", &MagnetoInitConfig::base,
        "What gamma scales: `xavier` (the paper), or `linear_default`, nn.Linear's own "
        "U(+-1/sqrt(fan_in)) for weights and biases (torchscale's code, which never calls its "
        "Xavier reset_parameters).")
      .choices({"xavier", "linear_default"});
  f.add("base_gain", &MagnetoInitConfig::base_gain,
        "Gain of the base draw before the Magneto factor (the paper: 1/sqrt(2) for q, k, v).")
      .above(0);
  f.add("distribution", &MagnetoInitConfig::distribution,
        "Draw from a normal or a uniform (of the same variance).")
      .choices({"normal", "uniform"});
  f.add("num_layers", &MagnetoInitConfig::num_layers, "Decoder layers N.", Hint::derived).min(1);
  f.add("gain", &MagnetoInitConfig::gain, "base_gain * sqrt(log(2N)).", Hint::derived);
}

void MagnetoInitConfig::resolve(ResolveContext& ctx) {
  if (ctx.num_layers > 0) num_layers = ctx.num_layers;
  gain = base_gain * std::sqrt(std::log(2.0 * static_cast<double>(num_layers)));
}

void register_magneto_init(config::Registry& registry) { registry.add<MagnetoInitConfig>(); }

}  // namespace blocks
