// Gated linear unit MLP (Shazeer 2020): down(activation(gate(x)) * up(x)); silu is SwiGLU
// (Llama), gelu GeGLU.
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct GatedMlpConfig : Declared<GatedMlpConfig, MlpConfig> {
  static constexpr std::string_view type_name = "gated";
  static constexpr std::string_view type_doc =
      "Gated linear unit: down(activation(gate(x)) * up(x)); silu is SwiGLU, gelu GeGLU.";
  int64_t intermediate_size = 0;
  std::string activation = "silu";
  double dropout = 0.0;
  LinearConfig gate, up, down;
  double lr_scale = 1.0;
  static void declare(Fields<GatedMlpConfig>& f);
  void resolve(ResolveContext& ctx) override;
  int64_t inner_width() const override { return intermediate_size; }
  std::vector<config::FlowStage> flow() const override {
    return {{.fields = {"gate", "up"}, .parallel = true}, {.fields = {"down"}}};
  }
};

}  // namespace blocks
