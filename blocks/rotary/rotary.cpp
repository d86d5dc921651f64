#include "blocks/rotary/rotary.h"

#include <cmath>

namespace blocks {

namespace {
template <class C>
void declare_base(Fields<C>& f) {
  f.add("theta", &C::theta, "Base of the rotation frequencies.").above(0);
  f.add("layout", &C::layout,
        "Dimension pairing: half (i, i + d/2; Hugging Face) or interleaved (2i, 2i + 1; Meta).")
      .choices({"half", "interleaved"});
}

// Llama 3 and YaRN both extend a pretraining context by a factor.
template <class C>
typename Fields<C>::Ref declare_original_context_length(Fields<C>& f) {
  return f
      .add("original_context_length", &C::original_context_length,
           "Context length of the pretraining the scaling extends.")
      .min(1);
}
}  // namespace

void DefaultRotaryConfig::declare(Fields<DefaultRotaryConfig>& f) { declare_base(f); }

void Llama3RotaryConfig::declare(Fields<Llama3RotaryConfig>& f) {
  declare_base(f);
  f.add("scale_factor", &Llama3RotaryConfig::scale_factor, "Low frequencies are divided by this.")
      .min(1);
  f.add("low_frequency_factor", &Llama3RotaryConfig::low_frequency_factor,
        "Wavelengths above original_context_length / this are fully scaled.")
      .above(0);
  f.add("high_frequency_factor", &Llama3RotaryConfig::high_frequency_factor,
        "Wavelengths below original_context_length / this are kept.")
      .above(0);
  declare_original_context_length(f);
}

void Llama3RotaryConfig::validate(const ResolveContext& ctx) const {
  if (high_frequency_factor <= low_frequency_factor)
    ctx.error(*this, "high_frequency_factor",
              "must be greater than low_frequency_factor (" +
                  config::format_number(low_frequency_factor) + "), found " +
                  config::format_number(high_frequency_factor));
}

void YarnRotaryConfig::declare(Fields<YarnRotaryConfig>& f) {
  declare_base(f);
  f.add("scale_factor", &YarnRotaryConfig::scale_factor,
        "Context extension factor: the slowest frequencies are divided by this.")
      .required()
      .min(1);
  declare_original_context_length(f).required();
  f.add("beta_fast", &YarnRotaryConfig::beta_fast,
        "Frequencies completing at least this many turns over original_context_length keep "
        "their value.")
      .above(0);
  f.add("beta_slow", &YarnRotaryConfig::beta_slow,
        "Frequencies completing at most this many turns are divided by scale_factor.")
      .above(0);
  f.add("attention_factor", &YarnRotaryConfig::attention_factor,
        "Multiplies cos and sin (attention logits by its square); null: 0.1 ln(scale_factor) + 1.")
      .above(0);
  f.add("truncate", &YarnRotaryConfig::truncate,
        "Whether the ramp's ends are rounded outwards to whole dimensions (false: gpt-oss).");
}

// transformers' get_mscale(scale_factor), the factor the YaRN paper suggests.
void YarnRotaryConfig::resolve(ResolveContext&) {
  if (!attention_factor)
    attention_factor = scale_factor <= 1 ? 1.0 : 0.1 * std::log(scale_factor) + 1;
}

void YarnRotaryConfig::validate(const ResolveContext& ctx) const {
  if (beta_fast <= beta_slow)
    ctx.error(*this, "beta_fast",
              "must be greater than beta_slow (" + config::format_number(beta_slow) + "), found " +
                  config::format_number(beta_fast));
}

void XposRotaryConfig::declare(Fields<XposRotaryConfig>& f) {
  declare_base(f);
  f.add("scale_base", &XposRotaryConfig::scale_base, "Length scale of the xPos decay.").above(0);
}

void register_rotaries(config::Registry& registry) {
  registry.add<NoRotaryConfig>();
  registry.add<DefaultRotaryConfig>();
  registry.add<Llama3RotaryConfig>();
  registry.add<YarnRotaryConfig>();
  registry.add<XposRotaryConfig>();
}

}  // namespace blocks
