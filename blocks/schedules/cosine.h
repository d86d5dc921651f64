// Cosine decay from the peak rate to `min_lr` between the end of the warmup and `decay_steps`,
// then `min_lr`: nanoGPT's train.py get_lr, step for step.
#pragma once

#include <optional>

#include "blocks/schedules/schedule.h"

namespace blocks {

struct CosineScheduleConfig : Declared<CosineScheduleConfig, ScheduleConfig> {
  static constexpr std::string_view type_name = "cosine";
  static constexpr std::string_view type_doc =
      "Linear warmup, then cosine decay to min_lr at decay_steps (nanoGPT's get_lr).";
  double min_lr = 0.0;
  std::optional<int64_t> decay_steps;  // unset: the run's steps

  static void declare(Fields<CosineScheduleConfig>& f);
  void validate(const ResolveContext& ctx) const override;
  double decayed(int64_t it, int64_t steps, double lr) const override;
};

}  // namespace blocks
