// Mixture of experts (Fedus et al. 2021, Switch; Mixtral; DeepSeekMoE's shared experts): a
// router sends each token to its top_k experts; shared experts see every token. The shared
// experts form one gated MLP of width shared_experts * shared_intermediate_size, as DeepSeekMoE
// implements them; the routed experts stack their weights as [experts, out, in].
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct MoeConfig : Declared<MoeConfig, MlpConfig> {
  static constexpr std::string_view type_name = "moe";
  static constexpr std::string_view type_doc =
      "Mixture of experts: a router sends each token to its top_k experts (gated MLPs).";
  int64_t experts = 0;
  int64_t top_k = 2;
  int64_t intermediate_size = 0;
  std::string activation = "silu";
  bool gated = true;
  bool normalize_top_k = true;
  int64_t shared_experts = 0;
  std::optional<int64_t> shared_intermediate_size;  // default: intermediate_size
  double aux_loss_coefficient = 0.01;
  double z_loss_coefficient = 0.0;
  double jitter = 0.0;
  LinearConfig router, gate, up, down;
  std::optional<LinearConfig> shared_gate, shared_up, shared_down;  // iff shared_experts > 0
  double lr_scale = 1.0;
  static void declare(Fields<MoeConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t inner_width() const override { return 0; }  // per expert: no single inner width
  // The router picks experts; each expert is a gated MLP (shared experts run beside them).
  std::vector<config::FlowStage> flow() const override {
    return {{.fields = {"router"}},
            {.fields = {"gate", "up"}, .parallel = true},
            {.fields = {"down"}}};
  }
};

}  // namespace blocks
