#include "blocks/mixers/attention.h"

#include <algorithm>
#include <cmath>

#include "blocks/norms/normalization.h"
#include "blocks/rotary/rotary.h"

namespace blocks {

void AttentionConfig::declare(Fields<AttentionConfig>& f) {
  f.add("heads", &AttentionConfig::heads, "Number of query heads.").required().min(1);
  f.add("head_groups", &AttentionConfig::head_groups,
        "Number of key/value heads (GQA); 1 is multi-query; default: heads.")
      .min(1);
  f.add("head_size", &AttentionConfig::head_size,
        "Dimension of each head; default: hidden_size / heads.")
      .min(1);
  f.add("rotary", &AttentionConfig::rotary,
        "Rotary position embedding; required unless the model has learned positions (then "
        "default: none); write {type: none} for a model without positions (NoPE).");
  f.add("causal", &AttentionConfig::causal, "Whether tokens attend only to earlier tokens.");
  f.add("window_size", &AttentionConfig::window_size,
        "Sliding window: each token attends to at most this many tokens; null: unlimited.")
      .min(1);
  f.add("softmax_scale", &AttentionConfig::softmax_scale,
        "Multiplies the attention logits; default: 1 / sqrt(head_size).")
      .above(0);
  f.add("qk_norm", &AttentionConfig::qk_norm,
        "Normalization of each query and key head before attention; default: none.");
  f.add("dropout", &AttentionConfig::dropout, "Dropout on attention probabilities.", Hint::optional)
      .min(0)
      .max(0.999);
  f.add("query", &AttentionConfig::query, "Query projection.", Hint::optional);
  f.add("key", &AttentionConfig::key, "Key projection.", Hint::optional);
  f.add("value", &AttentionConfig::value, "Value projection.", Hint::optional);
  f.add("output", &AttentionConfig::output,
        "Output projection; its weights default to scaled_normal.", Hint::optional);
  declare_lr_scale(f);
}

void AttentionConfig::resolve(ResolveContext& ctx) {
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
  // Without rotary or learned positions attention cannot tell token order apart except
  // through the causal mask; models trained so (NoPE, Jamba) exist, but leaving `rotary` out
  // by accident must not build one, so they say `rotary: {type: none}`. Checked before the
  // default below, which writes that same explicit none into the resolved tree.
  if (!rotary && !ctx.learned_positions)
    ctx.error(*this, "rotary",
              "the model has no positional information (no rotary embedding and no learned "
              "positions: embeddings.max_positions is null); choose a rotary type, or write "
              "`rotary: {type: none}` for a model without positions (NoPE)");
  set_default(rotary, NoRotaryConfig{});
  set_default(qk_norm, NoNormConfig{});
  // LoRA's default targets are the query and value projections (Hu et al. 2021, 4.2).
  set_linear_defaults(query, ctx, false, true);
  set_linear_defaults(key, ctx);
  set_linear_defaults(value, ctx, false, true);
  set_linear_defaults(output, ctx, true);
  const int64_t hidden = ctx.hidden_size.value_or(0);
  const int64_t size = head_size.value_or(0);
  const int64_t queries = ctx.product(*this, "head_size", heads, size);
  const int64_t keys = ctx.product(*this, "head_size", head_groups.value_or(heads), size);
  query.set_shape(hidden, queries);
  key.set_shape(hidden, keys);
  value.set_shape(hidden, keys);
  output.set_shape(queries, hidden);
  qk_norm->widths = {size, size};  // queries and keys, per head
  rotary->head_size = size;
  apply_lr_scale(ctx, lr_scale);
}

void AttentionConfig::validate(const ResolveContext& ctx) const {
  if (head_groups && heads > 0 && heads % *head_groups != 0)
    ctx.error(*this, "head_groups",
              "heads (" + std::to_string(heads) + ") must be divisible by head_groups (" +
                  std::to_string(*head_groups) + ")");
  if (head_size && *head_size % 2 != 0 && rotary && rotary.type_name() != "none")
    ctx.error(*this, "head_size",
              "rotary embeddings need an even head_size, found " + std::to_string(*head_size));
  if (window_size && !causal) ctx.error(*this, "window_size", "sliding windows need causal: true");
}

void register_attention(config::Registry& registry) { registry.add<AttentionConfig>(); }

double AttentionConfig::forward_flops(const config::FlopContext& context) const {
  const int64_t span =
      window_size ? std::min(*window_size, context.context_length) : context.context_length;
  return config::Config::forward_flops(context) +
         2.0 * 2.0 * static_cast<double>(span) * static_cast<double>(inner_width());
}

}  // namespace blocks
