#include "blocks/schedules/linear.h"

namespace blocks {

void LinearScheduleConfig::declare(Fields<LinearScheduleConfig>& f) {
  using C = LinearScheduleConfig;
  declare_warmup(f);
  f.add("min_lr", &C::min_lr, "The rate the decay ends at.", Hint::optional).min(0);
  f.add("decay_steps", &C::decay_steps,
        "The step the decay reaches min_lr; unset: the run's steps.", Hint::optional)
      .min(1);
}

void LinearScheduleConfig::validate(const ResolveContext& ctx) const {
  check_decay_end(ctx, *this, decay_steps);
}

double LinearScheduleConfig::decayed(int64_t it, int64_t steps, double lr) const {
  const int64_t end = decay_steps.value_or(steps);
  if (it >= end || end <= warmup_steps) return min_lr;
  const double ratio =
      static_cast<double>(it - warmup_steps) / static_cast<double>(end - warmup_steps);
  return lr + ratio * (min_lr - lr);
}

void register_linear_schedule(config::Registry& registry) { registry.add<LinearScheduleConfig>(); }

}  // namespace blocks
