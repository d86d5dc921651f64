#include "blocks/peft/peft.h"

namespace blocks {

void PeftTargetConfig::declare(Fields<PeftTargetConfig>& f) {
  f.add("name", &PeftTargetConfig::name, "Logical name to match.").required();
  f.add("layers", &PeftTargetConfig::layers, "[first, last] decoder layers (inclusive); null: all.")
      .min(0);
}

bool PeftTargetConfig::from_scalar(const config::Node& node, PeftTargetConfig& out,
                                   config::ParseContext&) {
  out.name = node.text;
  out.mark = node.mark;
  return true;
}

void LoraConfig::declare(Fields<LoraConfig>& f) {
  f.add("rank", &LoraConfig::rank, "Rank r of the adapters A [r, in] and B [out, r].").min(1);
  f.add("alpha", &LoraConfig::alpha, "Adapter output is scaled by alpha / rank.").above(0);
  f.add("dropout", &LoraConfig::dropout, "Dropout on the adapter input.", Hint::optional)
      .min(0)
      .max(0.999);
  f.add("allow_frozen_targets", &LoraConfig::allow_frozen_targets,
        "Keep adapters on linears that are frozen (lr scale 0, a fusion model's toggles), "
        "which can never train; otherwise they are an error naming the layers.",
        Hint::optional);
  f.add("targets", &LoraConfig::targets,
        "Shortcut: names of the layers to adapt; sets apply_peft on every linear they match "
        "(default without targets: query and value).",
        Hint::shortcut);
  f.add("modules_to_save", &LoraConfig::modules_to_save,
        "Parts that train in full beside the adapters, as PEFT's modules_to_save (e.g. head, "
        "or norm in layers 0-3): their base weights train and they get no adapters.",
        Hint::optional);
}

void LoraConfig::validate(const ResolveContext& ctx) const {
  auto check = [&](const std::vector<PeftTargetConfig>& list, const std::string& field) {
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& t = list[i];
      if (t.layers && (t.layers->size() != 2 || (*t.layers)[0] > (*t.layers)[1]))
        ctx.state->diagnostics->error(
            t.mark_of("layers"), ctx.path_of(field + "[" + std::to_string(i) + "].layers"),
            "expected [first, last] with first <= last");
    }
  };
  if (targets) check(*targets, "targets");
  if (modules_to_save) check(*modules_to_save, "modules_to_save");
}

void register_peft(config::Registry& registry) {
  registry.add<NoPeftConfig>();
  registry.add<LoraConfig>();
}

}  // namespace blocks
