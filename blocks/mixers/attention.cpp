#include "blocks/mixers/attention.h"

#include <algorithm>
#include <cmath>

#include "blocks/mixers/heads.h"
#include "blocks/rotary/rotary.h"

namespace blocks {

void AttentionConfig::declare(Fields<AttentionConfig>& f) {
  declare_head_shape(f);
  f.add("rotary", &AttentionConfig::rotary,
        "Rotary position embedding; required unless the model has learned positions (then "
        "default: none); write {type: none} for a model without positions (NoPE).");
  f.add("causal", &AttentionConfig::causal, "Whether tokens attend only to earlier tokens.");
  f.add("window_size", &AttentionConfig::window_size,
        "Sliding window: each token attends to at most this many tokens; null: unlimited.")
      .min(1);
  declare_head_scale(f);
  declare_projections(f);
  declare_lr_scale(f);
}

void AttentionConfig::resolve(ResolveContext& ctx) {
  resolve_head_defaults(*this, ctx);
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
  resolve_projections(*this, ctx, ctx.hidden_size.value_or(0));
  rotary->head_size = head_size.value_or(0);
  apply_lr_scale(ctx, lr_scale);
}

void AttentionConfig::validate(const ResolveContext& ctx) const {
  validate_head_groups(*this, ctx);
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
