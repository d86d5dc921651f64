#include "blocks/init/state_space.h"

namespace blocks {

void MambaDtInitConfig::declare(Fields<MambaDtInitConfig>& f) {
  f.add("dt_min", &MambaDtInitConfig::dt_min, "Smallest initial time step.").above(0);
  f.add("dt_max", &MambaDtInitConfig::dt_max, "Largest initial time step.").above(0);
  f.add("floor", &MambaDtInitConfig::floor, "Time steps are at least this.").min(0);
}

void MambaDtInitConfig::validate(const ResolveContext& ctx) const {
  if (dt_max < dt_min)
    ctx.error(*this, "dt_max",
              "must be >= dt_min (" + config::format_number(dt_min) + "), found " +
                  config::format_number(dt_max));
}

void register_state_space_inits(config::Registry& registry) {
  registry.add<S4dRealInitConfig>();
  registry.add<MambaDtInitConfig>();
}

}  // namespace blocks
