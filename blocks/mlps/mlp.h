// Feed-forward sub-layers: `mlp` (up, activation, down; GPT-2), `gated` (SwiGLU/GeGLU,
// Shazeer 2020; Llama), and `moe` (top-k routed experts, Fedus et al. 2021; Mixtral).
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

// Activations every MLP accepts.
const std::vector<std::string>& activation_names();

struct MlpLayerConfig : Declared<MlpLayerConfig, MlpConfig> {
  static constexpr std::string_view type_name = "mlp";
  static constexpr std::string_view type_doc = "Two linear layers with an activation between.";
  std::optional<int64_t> intermediate_size;  // default: 4 * hidden_size
  std::string activation = "gelu";
  double dropout = 0.0;
  LinearConfig up, down;
  double lr_scale = 1.0;
  static void declare(Fields<MlpLayerConfig>& f);
  void resolve(ResolveContext& ctx) override;
};

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
};

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
  double lr_scale = 1.0;
  static void declare(Fields<MoeConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
};

}  // namespace blocks
