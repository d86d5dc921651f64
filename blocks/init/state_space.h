// Initializations of Mamba's state-space parameters (Gu & Dao 2023, reference mamba_simple.py):
// A_log = log(1..state_size) per channel (S4D-Real), and the dt projection's bias set to the
// inverse softplus of dt drawn log-uniformly in [dt_min, dt_max].
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct S4dRealInitConfig : Declared<S4dRealInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "s4d_real";
  static constexpr std::string_view type_doc = "A_log[c, n] = log(n + 1) (S4D-Real, Mamba's A).";
  static void declare(Fields<S4dRealInitConfig>&) {}
};

struct MambaDtInitConfig : Declared<MambaDtInitConfig, InitializationConfig> {
  static constexpr std::string_view type_name = "mamba_dt";
  static constexpr std::string_view type_doc =
      "dt bias = softplus^-1(dt), dt log-uniform in [dt_min, dt_max], floored at floor.";
  double dt_min = 0.001;
  double dt_max = 0.1;
  double floor = 1e-4;
  static void declare(Fields<MambaDtInitConfig>& f);
  void validate(const ResolveContext& ctx) const override;
};

}  // namespace blocks
