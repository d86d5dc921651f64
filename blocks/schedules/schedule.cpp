#include "blocks/schedules/schedule.h"

namespace blocks {

void DecayScheduleConfig::validate(const ResolveContext& ctx) const {
  if (decay_steps && *decay_steps <= warmup_steps)
    ctx.error(*this, "decay_steps",
              "decay_steps (" + std::to_string(*decay_steps) + ") must be above warmup_steps (" +
                  std::to_string(warmup_steps) + ")");
}

}  // namespace blocks
