#include "blocks/schedules/schedule.h"

namespace blocks {

void check_decay_end(const ResolveContext& ctx, const ScheduleConfig& schedule,
                     const std::optional<int64_t>& decay_steps) {
  if (decay_steps && *decay_steps <= schedule.warmup_steps)
    ctx.error(schedule, "decay_steps",
              "decay_steps (" + std::to_string(*decay_steps) + ") must be above warmup_steps (" +
                  std::to_string(schedule.warmup_steps) + ")");
}

}  // namespace blocks
