#include "blocks/schedules/cosine.h"

namespace blocks {

void register_cosine_schedule(config::Registry& registry) { registry.add<CosineScheduleConfig>(); }

}  // namespace blocks
