#include "blocks/mixers/cross_attention.h"

#include <cmath>

#include "blocks/norms/normalization.h"

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
  f.add("heads", &C::heads, "Number of query heads.").required().min(1);
  f.add("head_groups", &C::head_groups,
        "Number of key/value heads (GQA); 1 is multi-query; default: heads.")
      .min(1);
  f.add("head_size", &C::head_size, "Dimension of each head; default: hidden_size / heads.")
      .min(1);
  f.add("softmax_scale", &C::softmax_scale,
        "Multiplies the attention logits; default: 1 / sqrt(head_size).")
      .above(0);
  f.add("qk_norm", &C::qk_norm,
        "Normalization of each query and key head before attention (Llama 3.2 Vision: "
        "rms_norm); default: none.");
  f.add("dropout", &C::dropout, "Dropout on attention probabilities.", Hint::optional)
      .min(0)
      .max(0.999);
  f.add("query", &C::query, "Query projection, from the stream.", Hint::optional);
  f.add("key", &C::key, "Key projection, from the memory.", Hint::optional);
  f.add("value", &C::value, "Value projection, from the memory.", Hint::optional);
  f.add("output", &C::output, "Output projection; its weights default to scaled_normal.",
        Hint::optional);
  declare_lr_scale(f);
}

void CrossAttentionConfig::resolve(ResolveContext& ctx) {
  set_default(head_groups, heads);
  if (!head_size && ctx.hidden_size && heads > 0) {
    if (*ctx.hidden_size % heads != 0)
      ctx.error(*this, "heads",
                "hidden_size " + std::to_string(*ctx.hidden_size) + " is not divisible by heads " +
                    std::to_string(heads) + "; set head_size explicitly");
    else
      head_size = *ctx.hidden_size / heads;
  }
  if (head_size) set_default(softmax_scale, 1.0 / std::sqrt(static_cast<double>(*head_size)));
  if (given_memory_width > 0)
    set_default(memory_width, given_memory_width);
  else if (ctx.hidden_size)
    set_default(memory_width, *ctx.hidden_size);
  set_default(qk_norm, NoNormConfig{});
  set_linear_defaults(query, ctx, false, true);
  set_linear_defaults(key, ctx);
  set_linear_defaults(value, ctx, false, true);
  set_linear_defaults(output, ctx, true);
  const int64_t hidden = ctx.hidden_size.value_or(0), width = memory_width.value_or(0);
  const int64_t size = head_size.value_or(0);
  const int64_t queries = ctx.product(*this, "head_size", heads, size);
  const int64_t keys = ctx.product(*this, "head_size", head_groups.value_or(heads), size);
  query.set_shape(hidden, queries);
  key.set_shape(width, keys);
  value.set_shape(width, keys);
  output.set_shape(queries, hidden);
  // A text token does not pass through the key and value projections: each memory vector does,
  // once (counted per media item by the fusion model).
  key.active_copies = 0;
  value.active_copies = 0;
  qk_norm->widths = {size, size};
  apply_lr_scale(ctx, lr_scale);
}

void CrossAttentionConfig::validate(const ResolveContext& ctx) const {
  if (head_groups && heads > 0 && heads % *head_groups != 0)
    ctx.error(*this, "head_groups",
              "heads (" + std::to_string(heads) + ") must be divisible by head_groups (" +
                  std::to_string(*head_groups) + ")");
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
