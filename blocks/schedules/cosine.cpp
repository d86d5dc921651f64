#include "blocks/schedules/cosine.h"

#include <cmath>

namespace blocks {

void CosineScheduleConfig::declare(Fields<CosineScheduleConfig>& f) {
  using C = CosineScheduleConfig;
  declare_warmup(f);
  f.add("min_lr", &C::min_lr, "The rate the decay ends at (nanoGPT: lr / 10).", Hint::optional)
      .min(0);
  f.add("decay_steps", &C::decay_steps,
        "The step the decay reaches min_lr (nanoGPT's lr_decay_iters); unset: the run's steps.",
        Hint::optional)
      .min(1);
}

void CosineScheduleConfig::validate(const ResolveContext& ctx) const {
  check_decay_end(ctx, *this, decay_steps);
}

double CosineScheduleConfig::decayed(int64_t it, int64_t steps, double lr) const {
  const int64_t end = decay_steps.value_or(steps);
  if (it > end || end <= warmup_steps) return min_lr;
  const double ratio =
      static_cast<double>(it - warmup_steps) / static_cast<double>(end - warmup_steps);
  const double coefficient = 0.5 * (1.0 + std::cos(M_PI * ratio));
  return min_lr + coefficient * (lr - min_lr);
}

void register_cosine_schedule(config::Registry& registry) { registry.add<CosineScheduleConfig>(); }

}  // namespace blocks
