// Parameter-efficient fine-tuning, configured once per model and applied per linear through
// `apply_peft` (Fast-LLM's model-agnostic PEFT). LoRA: Hu et al. 2021.
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct NoPeftConfig : Declared<NoPeftConfig, PeftConfig> {
  static constexpr std::string_view type_name = "none";
  static constexpr std::string_view type_doc = "No PEFT: every parameter trains as configured.";
  static void declare(Fields<NoPeftConfig>&) {}
};

// `query`, or {name: mlp, layers: [0, 7]}.
struct PeftTargetConfig : Declared<PeftTargetConfig, config::Config> {
  static constexpr std::string_view type_name = "peft_target";
  static constexpr std::string_view type_doc =
      "A logical layer name (a linear's field such as query, or an enclosing field, kind or "
      "type such as mlp), optionally limited to an inclusive range of decoder layers. "
      "A plain string is the name alone.";
  std::string name;
  std::optional<std::vector<int64_t>> layers;
  static void declare(Fields<PeftTargetConfig>& f);
  static bool from_scalar(const config::Node& node, PeftTargetConfig& out,
                          config::ParseContext& ctx);
};

struct LoraConfig : Declared<LoraConfig, PeftConfig> {
  static constexpr std::string_view type_name = "lora";
  static constexpr std::string_view type_doc =
      "LoRA: W + (alpha / rank) * B A on each linear with apply_peft; base weights freeze.";
  int64_t rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  bool allow_frozen_targets = false;
  std::optional<std::vector<PeftTargetConfig>> targets;  // shortcut
  std::optional<std::vector<PeftTargetConfig>> modules_to_save;
  static void declare(Fields<LoraConfig>& f);
  void validate(const ResolveContext& ctx) const override;
};

}  // namespace blocks
