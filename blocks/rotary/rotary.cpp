#include "blocks/rotary/rotary.h"

namespace blocks {

namespace {
template <class C>
void declare_base(Fields<C>& f) {
  f.add("theta", &C::theta, "Base of the rotation frequencies.").above(0);
  f.add("layout", &C::layout,
        "Dimension pairing: half (i, i + d/2; Hugging Face) or interleaved (2i, 2i + 1; Meta).")
      .choices({"half", "interleaved"});
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
  f.add("original_context_length", &Llama3RotaryConfig::original_context_length,
        "Context length of the pretraining the scaling extends.")
      .min(1);
}

void Llama3RotaryConfig::validate(const ResolveContext& ctx) const {
  if (high_frequency_factor <= low_frequency_factor)
    ctx.error(*this, "high_frequency_factor",
              "must be greater than low_frequency_factor (" +
                  config::format_number(low_frequency_factor) + "), found " +
                  config::format_number(high_frequency_factor));
}

void XposRotaryConfig::declare(Fields<XposRotaryConfig>& f) {
  declare_base(f);
  f.add("scale_base", &XposRotaryConfig::scale_base, "Length scale of the xPos decay.").above(0);
}

void register_rotaries(config::Registry& registry) {
  registry.add<NoRotaryConfig>();
  registry.add<DefaultRotaryConfig>();
  registry.add<Llama3RotaryConfig>();
  registry.add<XposRotaryConfig>();
}

}  // namespace blocks
