#include "blocks/init/uniform.h"

namespace blocks {

void UniformInitConfig::declare(Fields<UniformInitConfig>& f) {
  f.add("low", &UniformInitConfig::low, "Lower bound (inclusive).");
  f.add("high", &UniformInitConfig::high, "Upper bound (exclusive).");
}

void UniformInitConfig::validate(const ResolveContext& ctx) const {
  if (!(low < high))
    ctx.error(*this, "high",
              "must be greater than low (" + config::format_number(low) + "), found " +
                  config::format_number(high));
}

void register_uniform_init(config::Registry& registry) { registry.add<UniformInitConfig>(); }

}  // namespace blocks
