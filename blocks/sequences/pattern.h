// `pattern`: named blocks laid out by a pattern (Megatron's hybrid strings such as "M*M*"),
// repeated to num_layers. A `shared` named block uses one set of weights at every position
// (Zamba's shared attention, ALBERT), which Fast-LLM's rework asked for.
#pragma once

#include "blocks/kinds.h"
#include "blocks/sequences/layered.h"

namespace blocks {

struct PatternSequenceConfig : Declared<PatternSequenceConfig, LayeredSequence> {
  static constexpr std::string_view type_name = "pattern";
  static constexpr std::string_view type_doc =
      "Named blocks laid out by a pattern (a list of names, or a string of one-letter names), "
      "repeated to num_layers.";
  std::map<std::string, Dynamic<BlockConfig>> blocks;
  std::vector<std::string> pattern;
  std::optional<int64_t> num_layers;  // default: the pattern's length
  std::vector<std::string> shared;
  static void declare(Fields<PatternSequenceConfig>& f);
  static void preprocess(config::Node& node, config::ParseContext& ctx);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t length() const override;
  void set_length(int64_t layers) override { num_layers = layers; }
  int64_t period() const override { return pattern.empty() ? 1 : static_cast<int64_t>(pattern.size()); }
  const Dynamic<BlockConfig>& base_block(int64_t layer) const override;
  std::string base_name(int64_t layer) const override;
  bool is_shared(const std::string& name) const override;
};

}  // namespace blocks
