// `repeat` (Fast-LLM's RepeatBlockConfig): one block, which may itself be a sequence, repeated
// num_layers times with weights of its own at each layer; per-layer overrides.
#pragma once

#include "blocks/kinds.h"
#include "blocks/sequences/layered.h"

namespace blocks {

struct RepeatSequenceConfig : Declared<RepeatSequenceConfig, LayeredSequence> {
  static constexpr std::string_view type_name = "repeat";
  static constexpr std::string_view type_doc =
      "One block (or a sequence as a block) repeated num_layers times, each with its own weights.";
  Dynamic<BlockConfig> block;
  int64_t num_layers = 0;
  static void declare(Fields<RepeatSequenceConfig>& f);
  static void preprocess(config::Node& node, config::ParseContext& ctx);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t length() const override { return num_layers; }
  void set_length(int64_t layers) override { num_layers = layers; }
  int64_t period() const override { return 1; }
  const Dynamic<BlockConfig>& base_block(int64_t) const override { return block; }
  std::string base_name(int64_t) const override { return {}; }
  bool is_shared(const std::string&) const override { return false; }
};

}  // namespace blocks
