// Rotary position embeddings (Su et al. 2021, RoFormer) and their variants: Llama 3's
// frequency scaling (Meta's reference apply_scaling), YaRN (Peng et al. 2023, as transformers'
// _compute_yarn_parameters computes it) and xPos (Sun et al. 2022, KOSMOS-1).
// `layout` says how each head's dimensions pair up: `half` rotates (i, i + d/2) as in
// GPT-NeoX and Hugging Face Llama; `interleaved` rotates (2i, 2i + 1) as in Meta's reference.
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct NoRotaryConfig : Declared<NoRotaryConfig, RotaryConfig> {
  static constexpr std::string_view type_name = "none";
  static constexpr std::string_view type_doc = "No rotary embedding.";
  static void declare(Fields<NoRotaryConfig>&) {}
};

struct DefaultRotaryConfig : Declared<DefaultRotaryConfig, RotaryConfig> {
  static constexpr std::string_view type_name = "default";
  static constexpr std::string_view type_doc = "Rotary embedding with frequencies theta^(-2i/d).";
  double theta = 10000.0;
  std::string layout = "half";
  static void declare(Fields<DefaultRotaryConfig>& f);
};

struct Llama3RotaryConfig : Declared<Llama3RotaryConfig, RotaryConfig> {
  static constexpr std::string_view type_name = "llama3";
  static constexpr std::string_view type_doc =
      "Rotary embedding with Llama 3.1's long-context frequency scaling.";
  double theta = 500000.0;
  std::string layout = "half";
  double scale_factor = 8.0;
  double low_frequency_factor = 1.0;
  double high_frequency_factor = 4.0;
  int64_t original_context_length = 8192;
  static void declare(Fields<Llama3RotaryConfig>& f);
  void validate(const ResolveContext& ctx) const override;
};

// Frequencies whose wavelength fits beta_fast times into the original context keep their value,
// those fitting fewer than beta_slow times are divided by scale_factor, with a linear ramp over
// the dimensions between; cos and sin are multiplied by attention_factor.
struct YarnRotaryConfig : Declared<YarnRotaryConfig, RotaryConfig> {
  static constexpr std::string_view type_name = "yarn";
  static constexpr std::string_view type_doc =
      "Rotary embedding with YaRN context extension (frequency ramp and attention factor).";
  double theta = 10000.0;
  std::string layout = "half";
  double scale_factor = 0.0;            // required
  int64_t original_context_length = 0;  // required
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  std::optional<double> attention_factor;  // null until resolved: 0.1 ln(scale_factor) + 1
  bool truncate = true;
  static void declare(Fields<YarnRotaryConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
};

struct XposRotaryConfig : Declared<XposRotaryConfig, RotaryConfig> {
  static constexpr std::string_view type_name = "xpos";
  static constexpr std::string_view type_doc =
      "Rotary embedding with xPos length-extrapolation decay (KOSMOS-1, torchscale).";
  double theta = 10000.0;
  std::string layout = "interleaved";
  double scale_base = 512.0;
  static void declare(Fields<XposRotaryConfig>& f);
};

}  // namespace blocks
