// The peak learning rate throughout, after the warmup.
#pragma once

#include "blocks/schedules/schedule.h"

namespace blocks {

struct ConstantScheduleConfig : Declared<ConstantScheduleConfig, ScheduleConfig> {
  static constexpr std::string_view type_name = "constant";
  static constexpr std::string_view type_doc = "The peak learning rate after the warmup.";
  static void declare(Fields<ConstantScheduleConfig>& f) { declare_warmup(f); }
  double decayed(int64_t, int64_t, double lr) const override { return lr; }
};

}  // namespace blocks
