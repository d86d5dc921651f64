#include "blocks/init/normal.h"

#include <cmath>

namespace blocks {

void NormalInitConfig::declare(Fields<NormalInitConfig>& f) {
  f.add("mean", &NormalInitConfig::mean, "Mean of the distribution.");
  f.add("std", &NormalInitConfig::std, "Standard deviation.").min(0);
  f.add("truncation", &NormalInitConfig::truncation,
        "Redraw values further than this many standard deviations from the mean; null: none.")
      .above(0);
}

void ScaledNormalInitConfig::declare(Fields<ScaledNormalInitConfig>& f) {
  f.add("mean", &ScaledNormalInitConfig::mean, "Mean of the distribution.");
  f.add("std", &ScaledNormalInitConfig::std, "Standard deviation before scaling.").min(0);
  f.add("truncation", &ScaledNormalInitConfig::truncation,
        "Redraw values further than this many (scaled) standard deviations; null: none.")
      .above(0);
  f.add("num_layers", &ScaledNormalInitConfig::num_layers,
        "Blocks in the model's decoder; the scale is 1/sqrt(2 * num_layers).", Hint::derived)
      .min(1);
}

void ScaledNormalInitConfig::resolve(ResolveContext& ctx) {
  if (ctx.num_layers > 0) num_layers = ctx.num_layers;
}

double ScaledNormalInitConfig::scaled_std() const {
  return std / std::sqrt(2.0 * static_cast<double>(num_layers));
}

void register_normal_inits(config::Registry& registry) {
  registry.add<NormalInitConfig>();
  registry.add<ScaledNormalInitConfig>();
}

}  // namespace blocks
