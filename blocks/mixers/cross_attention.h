// Cross-attention (Vaswani et al. 2017's encoder-decoder attention; Flamingo's and Llama 3.2
// Vision's fusion layers): queries from the stream, keys and values from a named memory (an
// encoder's output) of a width of its own, grouped key/value heads, optional per-head query/key
// norms (Llama 3.2 Vision's RMSNorm), no positions: a memory is a set to the text.
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

// The memory a deep_fusion model gives its fusion layers: its encoder's features.
inline constexpr std::string_view kEncoderMemory = "encoder";

struct CrossAttentionConfig : Declared<CrossAttentionConfig, MixerConfig> {
  static constexpr std::string_view type_name = "cross_attention";
  static constexpr std::string_view type_doc =
      "Attention from the stream to a named memory (an encoder's output): keys and values from "
      "the memory, computed once per memory and kept in the decoding cache.";

  std::string memory = std::string(kEncoderMemory);
  std::optional<int64_t> memory_width;  // default: the fusion model's memory, else hidden_size
  int64_t heads = 0;
  std::optional<int64_t> head_groups;  // default: heads
  std::optional<int64_t> head_size;    // default: hidden_size / heads
  std::optional<double> softmax_scale;   // default: 1 / sqrt(head_size)
  Dynamic<NormalizationConfig> qk_norm;  // default: none
  double dropout = 0.0;
  LinearConfig query, key, value, output;
  double lr_scale = 1.0;

  // Set by an enclosing fusion model before this config resolves; not fields: the width and
  // the length of the memory it gives (0: unknown).
  int64_t given_memory_width = 0;
  int64_t memory_tokens = 0;

  static void declare(Fields<CrossAttentionConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t inner_width() const override { return heads * head_size.value_or(0); }
  // Scores and the weighted sum over the memory (its length when known, else the context);
  // the key and value projections run once per memory vector, not per token (media_flops).
  double forward_flops(const config::FlopContext& context) const override;
  // The query and the memory's key and value side by side, then the output projection.
  std::vector<config::FlowStage> flow() const override;
};

}  // namespace blocks
