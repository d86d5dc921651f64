#include "blocks/schedules/linear.h"

namespace blocks {

void register_linear_schedule(config::Registry& registry) { registry.add<LinearScheduleConfig>(); }

}  // namespace blocks
