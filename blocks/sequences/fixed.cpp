#include "blocks/sequences/fixed.h"

#include "blocks/linear/linear.h"
#include "blocks/sequences/layered.h"

namespace blocks {

void FixedSequenceConfig::declare(Fields<FixedSequenceConfig>& f) {
  f.add("blocks", &FixedSequenceConfig::blocks, "The blocks, in order.").required();
  declare_lr_scale(f);
}

void FixedSequenceConfig::resolve(ResolveContext& ctx) {
  numbering_ = ctx.number_layers;
  ctx.number_layers = false;
  if (numbering_) ctx.scope->decoder_length = static_cast<int64_t>(blocks.size());
  apply_lr_scale(ctx, lr_scale);
}

void FixedSequenceConfig::validate(const ResolveContext& ctx) const {
  if (blocks.empty()) ctx.error(*this, "blocks", "needs at least one block");
}

int64_t FixedSequenceConfig::layer_count() const {
  int64_t total = 0;
  for (const auto& b : blocks) total += b ? b->layer_count() : 1;
  return total;
}

config::Positions FixedSequenceConfig::positions_of(const config::Config& child) const {
  for (size_t i = 0; i < blocks.size(); ++i)
    if (blocks[i].get() == &child) return config::Positions::one(static_cast<int64_t>(i));
  return {};
}

void FixedSequenceConfig::enter(const config::Config& child, ResolveContext& child_ctx) const {
  if (numbering_)
    child_ctx.layers = std::make_shared<const config::Positions>(positions_of(child));
}

void register_fixed_sequence(config::Registry& registry) { registry.add<FixedSequenceConfig>(); }

}  // namespace blocks
