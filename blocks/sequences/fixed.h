// `fixed`: an explicit list of blocks (Fast-LLM's BlockSequenceConfig with no repetition).
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct FixedSequenceConfig : Declared<FixedSequenceConfig, SequenceConfig>,
                             config::ChildContexts,
                             config::Layout {
  static constexpr std::string_view type_name = "fixed";
  static constexpr std::string_view type_doc = "An explicit list of blocks.";
  std::vector<Dynamic<BlockConfig>> blocks;
  double lr_scale = 1.0;
  static void declare(Fields<FixedSequenceConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t layer_count() const override;
  void enter(const config::Config& child, ResolveContext& child_ctx) const override;
  config::Positions positions_of(const config::Config& child) const override;
  bool shares_weights(const config::Config&) const override { return false; }

 private:
  bool numbering_ = false;
};

}  // namespace blocks
