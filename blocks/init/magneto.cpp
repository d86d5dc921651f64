#include "blocks/init/magneto.h"

#include <cmath>

namespace blocks {

void MagnetoInitConfig::declare(Fields<MagnetoInitConfig>& f) {
  f.add("base_gain", &MagnetoInitConfig::base_gain,
        "Xavier gain before the Magneto factor (torchscale uses 1/sqrt(2) for q, k, v).")
      .above(0);
  f.add("distribution", &MagnetoInitConfig::distribution, "Draw from a normal or a uniform.")
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
