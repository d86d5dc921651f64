// Linear decay from the peak rate to `min_lr` between the end of the warmup and
// `decay_steps`, then `min_lr` (Hugging Face's get_linear_schedule_with_warmup decays to 0).
#pragma once

#include <optional>

#include "blocks/schedules/schedule.h"

namespace blocks {

struct LinearScheduleConfig : Declared<LinearScheduleConfig, ScheduleConfig> {
  static constexpr std::string_view type_name = "linear";
  static constexpr std::string_view type_doc =
      "Linear warmup, then linear decay to min_lr at decay_steps.";
  double min_lr = 0.0;
  std::optional<int64_t> decay_steps;  // unset: the run's steps

  static void declare(Fields<LinearScheduleConfig>& f);
  void validate(const ResolveContext& ctx) const override;
  double decayed(int64_t it, int64_t steps, double lr) const override;
};

}  // namespace blocks
