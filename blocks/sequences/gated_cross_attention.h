// The gated cross-attention block of deep fusion (Flamingo's GATED XATTN-DENSE, torchtune's
// TransformerCrossAttentionLayer, Hugging Face's MllamaCrossAttentionDecoderLayer):
//   h = x + tanh(attention_gate) * cross_attention(norm(x))
//   y = h + tanh(mlp_gate) * mlp(mlp_norm(h))
// Gates start at 0, so a decoder with such blocks inserted computes what it did without them.
// Tokens whose memory mask row has no attendable entry: `skip` zeroes both branches (torchtune:
// the block is the identity for them), `skip_mlp` zeroes only the MLP branch (Hugging Face's
// mllama, whose attention then spans the whole memory), `skip_attention` only the attention
// branch (open_flamingo's MaskedCrossAttention: text before the first image).
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"
#include "blocks/mixers/cross_attention.h"

namespace blocks {

struct GatedCrossAttentionConfig : Declared<GatedCrossAttentionConfig, BlockConfig> {
  static constexpr std::string_view type_name = "gated_cross_attention";
  static constexpr std::string_view type_doc =
      "Cross-attention and an MLP, each in a residual branch scaled by tanh of a gate that "
      "starts at 0 (Flamingo, Llama 3.2 Vision).";

  CrossAttentionConfig attention;
  Dynamic<MlpConfig> mlp;
  Dynamic<NormalizationConfig> normalization;
  Dynamic<NormalizationConfig> mlp_normalization;  // default: same as normalization
  WeightConfig attention_gate, mlp_gate;
  std::string unattended_rows = "skip";
  double lr_scale = 1.0;
  std::optional<bool> add_linear_biases;  // shortcut
  std::optional<double> init_std;         // shortcut

  static void declare(Fields<GatedCrossAttentionConfig>& f);
  void resolve(ResolveContext& ctx) override;
  std::vector<config::FlowStage> flow() const override;
  int64_t layer_count() const override { return 1; }
};

}  // namespace blocks
