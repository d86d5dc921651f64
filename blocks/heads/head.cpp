#include "blocks/heads/head.h"

namespace blocks {

void HeadConfig::declare(Fields<HeadConfig>& f) {
  f.add("normalization", &HeadConfig::normalization, "Normalization before the projection.")
      .required();
  f.add("tied", &HeadConfig::tied, "Whether the projection reuses the token embedding matrix.");
  f.add("output", &HeadConfig::output,
        "Output matrix [vocab_size, hidden_size] when not tied; null when tied.", Hint::optional);
  declare_lr_scale(f);
}

void HeadConfig::resolve(ResolveContext& ctx) {
  if (!tied)
    set_default(output, WeightConfig{});
  else if (output)
    ctx.error(*this, "output", "is set but tied is true: a tied head has no output matrix");
  const int64_t hidden = ctx.hidden_size.value_or(0);
  hidden_size = hidden;
  if (normalization) normalization->widths = {hidden};
  if (output && !tied) output->shape = {vocab_size, hidden};
  apply_lr_scale(ctx, lr_scale);
}

double HeadConfig::forward_flops(const config::FlopContext& context) const {
  const double product = tied ? 2.0 * static_cast<double>(vocab_size) * hidden_size : 0;
  return config::Config::forward_flops(context) + product;
}

}  // namespace blocks
