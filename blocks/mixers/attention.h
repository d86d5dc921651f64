// Multi-head attention with grouped query heads (GQA, Ainslie et al. 2023; MQA when
// head_groups = 1), rotary embeddings, sliding windows (Mistral), and query/key norm.
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct AttentionConfig : Declared<AttentionConfig, MixerConfig> {
  static constexpr std::string_view type_name = "attention";
  static constexpr std::string_view type_doc =
      "Multi-head self-attention (MHA, GQA, MQA) with rotary embeddings and sliding windows.";

  int64_t heads = 0;
  std::optional<int64_t> head_groups;  // default: heads (MHA)
  std::optional<int64_t> head_size;    // default: hidden_size / heads
  Dynamic<RotaryConfig> rotary;        // default: none
  bool causal = true;
  std::optional<int64_t> window_size;
  std::optional<double> softmax_scale;   // default: 1 / sqrt(head_size)
  Dynamic<NormalizationConfig> qk_norm;  // default: none
  double dropout = 0.0;
  LinearConfig query, key, value, output;
  double lr_scale = 1.0;

  static void declare(Fields<AttentionConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t inner_width() const override { return heads * head_size.value_or(0); }
  // Scores q.k and the weighted sum of values over the context (the window, if shorter), for
  // every query head; the projections are the linears' own.
  double forward_flops(const config::FlopContext& context) const override;
  // Query, key and value side by side, then the output projection.
  std::vector<config::FlowStage> flow() const override {
    return {{.fields = {"query", "key", "value"}, .parallel = true}, {.fields = {"output"}}};
  }
};

}  // namespace blocks
