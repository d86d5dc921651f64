#include "blocks/sequences/repeat.h"

#include "blocks/linear/linear.h"

namespace blocks {

using config::Node;

void RepeatSequenceConfig::declare(Fields<RepeatSequenceConfig>& f) {
  f.add("block", &RepeatSequenceConfig::block, "The block to repeat (may be a sequence).")
      .required();
  f.add("num_layers", &RepeatSequenceConfig::num_layers, "Number of repetitions.")
      .required()
      .min(1);
  f.add("overrides", &RepeatSequenceConfig::overrides,
        "Per-layer changes, by layer index, merged onto `block` for that layer only.")
      .schema_as(partial_blocks_schema());
  declare_lr_scale(f);
}

void RepeatSequenceConfig::preprocess(Node& node, config::ParseContext&) {
  const Node* block = node.find("block");
  if (!block) return;
  const Node base = *block;
  merge_overrides(node, [&](int64_t) { return &base; });
}

void RepeatSequenceConfig::resolve(ResolveContext& ctx) { resolve_layers(ctx); }

void RepeatSequenceConfig::validate(const ResolveContext& ctx) const { validate_overrides(ctx); }

void register_repeat_sequence(config::Registry& registry) { registry.add<RepeatSequenceConfig>(); }

}  // namespace blocks
