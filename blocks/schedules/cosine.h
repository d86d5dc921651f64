// Cosine decay from the peak rate to `min_lr` between the end of the warmup and `decay_steps`,
// then `min_lr`: nanoGPT's train.py get_lr, step for step (at decay_steps the cosine is at
// min_lr exactly, so `>=` there equals nanoGPT's `it > lr_decay_iters`).
#pragma once

#include <cmath>

#include "blocks/schedules/schedule.h"

namespace blocks {

struct CosineScheduleConfig : Declared<CosineScheduleConfig, DecayScheduleConfig> {
  static constexpr std::string_view type_name = "cosine";
  static constexpr std::string_view type_doc =
      "Linear warmup, then cosine decay to min_lr at decay_steps (nanoGPT's get_lr).";
  static void declare(Fields<CosineScheduleConfig>& f) { declare_decay(f); }
  double shape(double ratio) const override { return 0.5 * (1.0 + std::cos(M_PI * ratio)); }
};

}  // namespace blocks
