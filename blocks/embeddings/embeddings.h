// Input embeddings of a language model: token embeddings and, optionally, learned absolute
// position embeddings (GPT-2); a constant scale on the token embeddings (Gemma: sqrt(hidden),
// as transformers' GemmaModel multiplies by a `normalizer` in the activation dtype).
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct EmbeddingsConfig : Declared<EmbeddingsConfig, config::Config> {
  static constexpr std::string_view type_name = "embeddings";
  static constexpr std::string_view type_doc =
      "Token embeddings, plus learned position embeddings when max_positions is set.";
  int64_t vocab_size = 0;
  std::optional<int64_t> max_positions;
  WeightConfig word;
  std::optional<WeightConfig> position;  // present iff max_positions is set
  double scale = 1.0;
  double dropout = 0.0;
  double lr_scale = 1.0;
  static void declare(Fields<EmbeddingsConfig>& f);
  void resolve(ResolveContext& ctx) override;
  // Token and position embeddings are looked up side by side and summed.
  std::vector<config::FlowStage> flow() const override {
    return {{.fields = {"word", "position"}, .parallel = true}};
  }
};

}  // namespace blocks
