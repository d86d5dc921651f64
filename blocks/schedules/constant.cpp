#include "blocks/schedules/constant.h"

namespace blocks {

void register_constant_schedule(config::Registry& registry) {
  registry.add<ConstantScheduleConfig>();
}

}  // namespace blocks
