// A decoder language model: embeddings, a decoder (a block sequence), a head, and PEFT.
// Its forward will take token ids or ready input embeddings (how fusion models feed it).
#pragma once

#include "blocks/embeddings/embeddings.h"
#include "blocks/heads/head.h"
#include "blocks/kinds.h"

namespace blocks {

struct LanguageModelConfig : Declared<LanguageModelConfig, ModelConfig> {
  static constexpr std::string_view type_name = "language_model";
  static constexpr std::string_view type_doc =
      "Embeddings, a decoder stack and an LM head; hidden_size flows down to every block.";
  int64_t hidden_size = 0;
  EmbeddingsConfig embeddings;
  Dynamic<BlockConfig> decoder;
  HeadConfig head;
  Dynamic<PeftConfig> peft;  // default: none
  double lr_scale = 1.0;
  std::optional<bool> add_linear_biases;  // shortcut
  std::optional<double> init_std;         // shortcut
  static void declare(Fields<LanguageModelConfig>& f);
  void resolve_model(ResolveContext& ctx) override;
  void finish(ResolveContext& ctx) override;
};

}  // namespace blocks
