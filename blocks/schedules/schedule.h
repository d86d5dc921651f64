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

// Declares warmup_steps on a schedule type.
template <class C>
void declare_warmup(Fields<C>& f) {
  f.add("warmup_steps", &C::warmup_steps,
        "Steps of linear warmup to the peak rate: step i (from 0) runs at lr (i + 1) / "
        "(warmup_steps + 1), as nanoGPT's get_lr.",
        Hint::optional)
      .min(0);
}

// A schedule that decays to `min_lr` at `decay_steps` (the run's steps when unset), then holds
// it; the types say how (cosine, linear). Their fields are declared here once.
struct DecayScheduleConfig : ScheduleConfig {
  double min_lr = 0.0;
  std::optional<int64_t> decay_steps;  // unset: the run's steps

  // decay_steps, when set, must end after the warmup.
  void validate(const ResolveContext& ctx) const override;
  double decayed(int64_t it, int64_t steps, double lr) const final {
    const int64_t end = decay_steps.value_or(steps);
    if (it >= end || end <= warmup_steps) return min_lr;
    const double ratio =
        static_cast<double>(it - warmup_steps) / static_cast<double>(end - warmup_steps);
    return min_lr + shape(ratio) * (lr - min_lr);
  }
  // The fraction of (lr - min_lr) left at `ratio` of the way through the decay: 1 at 0, 0 at 1.
  virtual double shape(double ratio) const = 0;
};

// Declares warmup_steps, min_lr and decay_steps on a decaying schedule type.
template <class C>
void declare_decay(Fields<C>& f) {
  declare_warmup(f);
  f.add("min_lr", &C::min_lr, "The rate the decay ends at (nanoGPT: lr / 10).", Hint::optional)
      .min(0);
  f.add("decay_steps", &C::decay_steps,
        "The step the decay reaches min_lr (nanoGPT's lr_decay_iters); unset: the run's steps.",
        Hint::optional)
      .min(1);
}

}  // namespace blocks
