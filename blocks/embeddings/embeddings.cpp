#include "blocks/embeddings/embeddings.h"

namespace blocks {

void EmbeddingsConfig::declare(Fields<EmbeddingsConfig>& f) {
  f.add("vocab_size", &EmbeddingsConfig::vocab_size, "Number of token ids.").required().min(1);
  f.add("max_positions", &EmbeddingsConfig::max_positions,
        "Learned absolute position embeddings for this many positions; null: none.")
      .min(1);
  f.add("word", &EmbeddingsConfig::word, "Token embedding matrix [vocab_size, hidden_size].",
        Hint::optional);
  f.add("position", &EmbeddingsConfig::position,
        "Position embedding matrix [max_positions, hidden_size]; only with max_positions.",
        Hint::optional);
  f.add("scale", &EmbeddingsConfig::scale,
        "Multiplies the token embeddings (or the given input embeddings), rounded to their dtype, "
        "before position embeddings are added; Gemma: sqrt(hidden_size).")
      .above(0);
  f.add("dropout", &EmbeddingsConfig::dropout, "Dropout on the summed embeddings.", Hint::optional)
      .min(0)
      .max(0.999);
  declare_lr_scale(f);
}

void EmbeddingsConfig::resolve(ResolveContext& ctx) {
  if (max_positions)
    set_default(position, WeightConfig{});
  else if (position)
    ctx.error(*this, "position", "is set but max_positions is null");
  const int64_t hidden = ctx.hidden_size.value_or(0);
  word.shape = {vocab_size, hidden};
  if (position && max_positions) position->shape = {*max_positions, hidden};
  // Looked up, not multiplied: no FLOPs.
  word.multiplied = false;
  if (position) position->multiplied = false;
  apply_lr_scale(ctx, lr_scale);
}

}  // namespace blocks
