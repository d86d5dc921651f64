// The language-model head: final normalization and the output projection to vocabulary
// logits, tied to the token embeddings or a matrix of its own.
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"

namespace blocks {

struct HeadConfig : Declared<HeadConfig, config::Config> {
  static constexpr std::string_view type_name = "head";
  static constexpr std::string_view type_doc =
      "Final normalization and projection to vocabulary logits.";
  Dynamic<NormalizationConfig> normalization;
  bool tied = false;
  std::optional<WeightConfig> output;  // present iff not tied
  double lr_scale = 1.0;
  int64_t vocab_size = 0;   // set by the model during resolution; not a field
  int64_t hidden_size = 0;  // from the context during resolution; not a field
  static void declare(Fields<HeadConfig>& f);
  void resolve(ResolveContext& ctx) override;
  // Tied: the product with the token embedding matrix, which the embeddings own but only
  // look up. Untied, the output matrix counts itself.
  double forward_flops(const config::FlopContext& context) const override;
};

}  // namespace blocks
