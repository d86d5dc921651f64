// Linear decay from the peak rate to `min_lr` between the end of the warmup and
// `decay_steps`, then `min_lr` (Hugging Face's get_linear_schedule_with_warmup decays to 0).
#pragma once

#include "blocks/schedules/schedule.h"

namespace blocks {

struct LinearScheduleConfig : Declared<LinearScheduleConfig, DecayScheduleConfig> {
  static constexpr std::string_view type_name = "linear";
  static constexpr std::string_view type_doc =
      "Linear warmup, then linear decay to min_lr at decay_steps.";
  static void declare(Fields<LinearScheduleConfig>& f) { declare_decay(f); }
  double shape(double ratio) const override { return 1.0 - ratio; }
};

}  // namespace blocks
