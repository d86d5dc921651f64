// The transformer block (Fast-LLM's unified block): a mixer and an MLP, each in a residual
// branch with normalization placed pre (GPT-2, Llama), post (original Transformer), or sub
// (Sub-LN: pre plus an extra norm before each branch's output projection; Magneto, KOSMOS-1).
// Either branch may be left out (written as no `mixer` or no `mlp` key, never as a `none`
// type): pure Mamba-1 stacks have no MLP, and Nemotron-H interleaves Mamba-only,
// attention-only and MLP-only layers. A block of one branch normalizes it with `normalization`
// and has no `mlp_normalization`.
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct TransformerConfig : Declared<TransformerConfig, BlockConfig> {
  static constexpr std::string_view type_name = "transformer";
  static constexpr std::string_view type_doc =
      "A block of two residual branches: mixer, then MLP, each with its normalization; either "
      "may be left out.";

  Dynamic<MixerConfig> mixer;                  // absent: no mixer branch
  Dynamic<MlpConfig> mlp;                      // absent: no MLP branch
  Dynamic<NormalizationConfig> normalization;  // of the first branch
  // Of the MLP after a mixer (default: same as normalization); absent with one branch.
  Dynamic<NormalizationConfig> mlp_normalization;
  Dynamic<NormalizationConfig> sub_normalization;  // sub placement only; default: normalization
  std::string normalization_placement = "pre";
  double residual_scale = 1.0;
  double dropout = 0.0;
  double lr_scale = 1.0;
  std::optional<bool> add_linear_biases;  // shortcut
  std::optional<double> init_std;         // shortcut

  static void declare(Fields<TransformerConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void finish(ResolveContext& ctx) override;
  // Two residual branches, normalized before (pre, sub) or after (post) the sum.
  std::vector<config::FlowStage> flow() const override;
  void validate(const ResolveContext& ctx) const override;
  int64_t layer_count() const override { return 1; }
};

// Pushes the `add_linear_biases` and `init_std` shortcuts into the context and clears them, so
// resolved configs show only the per-linear values they became.
void take_shortcuts(std::optional<bool>& add_linear_biases, std::optional<double>& init_std,
                    ResolveContext& ctx);

}  // namespace blocks
