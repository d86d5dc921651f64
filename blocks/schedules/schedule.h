// What every learning-rate schedule shares: a linear warmup, then the type's own decay. The
// warmup is nanoGPT's (train.py get_lr): step `it` (from 0) of `warmup_steps` runs at
// lr * (it + 1) / (warmup_steps + 1).
#pragma once

#include <optional>

#include "blocks/kinds.h"

namespace blocks {

struct ScheduleConfig : config::Config {
  static constexpr std::string_view kind_name = "schedule";
  int64_t warmup_steps = 0;

  // The learning rate of optimizer step `it` (0-based) of a run of `steps` steps at peak `lr`.
  double lr_at(int64_t it, int64_t steps, double lr) const {
    if (it < warmup_steps)
      return lr * static_cast<double>(it + 1) / static_cast<double>(warmup_steps + 1);
    return decayed(it, steps, lr);
  }
  // The rate after warmup.
  virtual double decayed(int64_t it, int64_t steps, double lr) const = 0;
};

// A decay's `decay_steps`, when set, must end after the warmup.
void check_decay_end(const ResolveContext& ctx, const ScheduleConfig& schedule,
                     const std::optional<int64_t>& decay_steps);

// Declares warmup_steps on a schedule type.
template <class C>
void declare_warmup(Fields<C>& f) {
  f.add("warmup_steps", &C::warmup_steps,
        "Steps of linear warmup to the peak rate: step i (from 0) runs at lr (i + 1) / "
        "(warmup_steps + 1), as nanoGPT's get_lr.",
        Hint::optional)
      .min(0);
}

}  // namespace blocks
