// What attention and cross-attention share, declared once: query heads, grouped key/value
// heads, the head size, the softmax scale, the per-head query/key norm, dropout on the
// probabilities, and the four projections with their defaults and shapes.
#pragma once

#include <cmath>
#include <string>

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"
#include "blocks/norms/normalization.h"

namespace blocks {

template <class C>
void declare_head_shape(Fields<C>& f) {
  f.add("heads", &C::heads, "Number of query heads.").required().min(1);
  f.add("head_groups", &C::head_groups,
        "Number of key/value heads (GQA); 1 is multi-query; default: heads.")
      .min(1);
  f.add("head_size", &C::head_size, "Dimension of each head; default: hidden_size / heads.")
      .min(1);
}

template <class C>
void declare_head_scale(Fields<C>& f) {
  f.add("softmax_scale", &C::softmax_scale,
        "Multiplies the attention logits; default: 1 / sqrt(head_size).")
      .above(0);
  f.add("qk_norm", &C::qk_norm,
        "Normalization of each query and key head before attention (Llama 3.2 Vision's "
        "cross-attention: rms_norm); default: none.");
  f.add("dropout", &C::dropout, "Dropout on attention probabilities.", Hint::optional)
      .min(0)
      .max(0.999);
}

// `from_keys`: where keys and values come from, for their docs ("" for the stream).
template <class C>
void declare_projections(Fields<C>& f, const std::string& from_keys = "") {
  const std::string source = from_keys.empty() ? "" : ", from " + from_keys;
  f.add("query", &C::query, "Query projection.", Hint::optional);
  f.add("key", &C::key, "Key projection" + source + ".", Hint::optional);
  f.add("value", &C::value, "Value projection" + source + ".", Hint::optional);
  f.add("output", &C::output, "Output projection; its weights default to scaled_normal.",
        Hint::optional);
}

// head_groups (heads), head_size (hidden_size / heads) and softmax_scale (1 / sqrt(head_size)).
template <class C>
void resolve_head_defaults(C& c, ResolveContext& ctx) {
  set_default(c.head_groups, c.heads);
  if (!c.head_size && ctx.hidden_size && c.heads > 0) {
    if (*ctx.hidden_size % c.heads != 0)
      ctx.error(c, "heads",
                "hidden_size " + std::to_string(*ctx.hidden_size) + " is not divisible by heads " +
                    std::to_string(c.heads) + "; set head_size explicitly");
    else
      c.head_size = *ctx.hidden_size / c.heads;
  }
  if (c.head_size)
    set_default(c.softmax_scale, 1.0 / std::sqrt(static_cast<double>(*c.head_size)));
}

// The projections' defaults and shapes: queries from the stream, keys and values from vectors
// of `key_width`; the query/key norm per head.
template <class C>
void resolve_projections(C& c, ResolveContext& ctx, int64_t key_width) {
  set_default(c.qk_norm, NoNormConfig{});
  // LoRA's default targets are the query and value projections (Hu et al. 2021, 4.2).
  set_linear_defaults(c.query, ctx, false, true);
  set_linear_defaults(c.key, ctx);
  set_linear_defaults(c.value, ctx, false, true);
  set_linear_defaults(c.output, ctx, true);
  const int64_t hidden = ctx.hidden_size.value_or(0);
  const int64_t size = c.head_size.value_or(0);
  const int64_t queries = ctx.product(c, "head_size", c.heads, size);
  const int64_t keys = ctx.product(c, "head_size", c.head_groups.value_or(c.heads), size);
  c.query.set_shape(hidden, queries);
  c.key.set_shape(key_width, keys);
  c.value.set_shape(key_width, keys);
  c.output.set_shape(queries, hidden);
  c.qk_norm->widths = {size, size};  // queries and keys, per head
}

template <class C>
void validate_head_groups(const C& c, const ResolveContext& ctx) {
  if (c.head_groups && c.heads > 0 && c.heads % *c.head_groups != 0)
    ctx.error(c, "head_groups",
              "heads (" + std::to_string(c.heads) + ") must be divisible by head_groups (" +
                  std::to_string(*c.head_groups) + ")");
}

}  // namespace blocks
