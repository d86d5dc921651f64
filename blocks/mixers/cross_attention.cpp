#include "blocks/mixers/cross_attention.h"

#include "blocks/mixers/heads.h"

namespace blocks {

void CrossAttentionConfig::declare(Fields<CrossAttentionConfig>& f) {
  using C = CrossAttentionConfig;
  f.add("memory", &C::memory,
        "Name of the memory attended to (ModelInput::memories); a deep_fusion model gives "
        "'encoder'.");
  f.add("memory_width", &C::memory_width,
        "Width of the memory's vectors, which keys and values project from; default: the "
        "enclosing fusion model's memory, else hidden_size.")
      .min(1);
  declare_head_shape(f);
  declare_head_scale(f);
  declare_projections(f, "the memory");
  declare_lr_scale(f);
}

void CrossAttentionConfig::resolve(ResolveContext& ctx) {
  resolve_head_defaults(*this, ctx);
  if (given_memory_width > 0)
    set_default(memory_width, given_memory_width);
  else if (ctx.hidden_size)
    set_default(memory_width, *ctx.hidden_size);
  resolve_projections(*this, ctx, memory_width.value_or(0));
  // A text token does not pass through the key and value projections: each memory vector does,
  // once (counted per media item by the fusion model).
  key.active_copies = 0;
  value.active_copies = 0;
  apply_lr_scale(ctx, lr_scale);
}

void CrossAttentionConfig::validate(const ResolveContext& ctx) const {
  validate_head_groups(*this, ctx);
  if (given_memory_width > 0 && memory_width && *memory_width != given_memory_width)
    ctx.error(*this, "memory_width",
              "is " + std::to_string(*memory_width) + ", but the memory '" + memory +
                  "' this model gives has width " + std::to_string(given_memory_width));
  if (memory.empty()) ctx.error(*this, "memory", "names no memory");
}

double CrossAttentionConfig::forward_flops(const config::FlopContext& context) const {
  const int64_t span = memory_tokens > 0 ? memory_tokens : context.context_length;
  return 2.0 * 2.0 * static_cast<double>(span) * static_cast<double>(inner_width());
}

std::vector<config::FlowStage> CrossAttentionConfig::flow() const {
  return {{.fields = {"query", "key", "value"}, .parallel = true}, {.fields = {"output"}}};
}

void register_cross_attention(config::Registry& registry) {
  registry.add<CrossAttentionConfig>();
}

}  // namespace blocks
