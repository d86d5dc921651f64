#include "blocks/init/fan_scaled.h"

namespace blocks {

void KaimingInitConfig::declare(Fields<KaimingInitConfig>& f) {
  f.add("mode", &KaimingInitConfig::mode, "Which fan scales the variance.")
      .choices({"fan_in", "fan_out"});
  f.add("nonlinearity", &KaimingInitConfig::nonlinearity,
        "The activation that follows, which sets the gain (torch.nn.init.calculate_gain).")
      .choices({"linear", "relu", "leaky_relu", "tanh", "sigmoid", "selu"});
  f.add("negative_slope", &KaimingInitConfig::negative_slope,
        "Slope of leaky_relu's negative part (0 gives the relu gain).")
      .min(0);
  f.add("distribution", &KaimingInitConfig::distribution, "Draw from a normal or a uniform.")
      .choices({"normal", "uniform"});
}

void XavierInitConfig::declare(Fields<XavierInitConfig>& f) {
  f.add("gain", &XavierInitConfig::gain, "Multiplies the standard deviation.").above(0);
  f.add("distribution", &XavierInitConfig::distribution, "Draw from a normal or a uniform.")
      .choices({"normal", "uniform"});
}

void register_fan_scaled_inits(config::Registry& registry) {
  registry.add<KaimingInitConfig>();
  registry.add<XavierInitConfig>();
}

}  // namespace blocks
