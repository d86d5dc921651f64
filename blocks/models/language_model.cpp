#include "blocks/models/language_model.h"

#include "blocks/linear/linear.h"
#include "blocks/peft/peft.h"
#include "blocks/sequences/transformer.h"

namespace blocks {

void LanguageModelConfig::declare(Fields<LanguageModelConfig>& f) {
  f.add("hidden_size", &LanguageModelConfig::hidden_size, "Width of the residual stream.")
      .required()
      .min(1);
  f.add("embeddings", &LanguageModelConfig::embeddings, "Input embeddings.").required();
  f.add("decoder", &LanguageModelConfig::decoder, "The stack of blocks.").required();
  f.add("head", &LanguageModelConfig::head, "Final norm and output projection.").required();
  f.add("peft", &LanguageModelConfig::peft, "Parameter-efficient fine-tuning; default: none.",
        Hint::optional);
  declare_lr_scale(f);
  f.add("add_linear_biases", &LanguageModelConfig::add_linear_biases,
        "Shortcut: default `bias` of every linear in the model.", Hint::shortcut);
  f.add("init_std", &LanguageModelConfig::init_std,
        "Shortcut: default weight std of every linear and embedding in the model.", Hint::shortcut)
      .min(0);
}

void LanguageModelConfig::resolve_model(ResolveContext& ctx) {
  take_shortcuts(add_linear_biases, init_std, ctx);
  ctx.hidden_size = hidden_size;
  ctx.num_layers = decoder ? decoder->layer_count() : 0;
  ctx.learned_positions = embeddings.max_positions.has_value();
  apply_lr_scale(ctx, lr_scale);
  set_default(peft, NoPeftConfig{});
  ctx.peft_active = peft.type_name() != "none";
  if (const auto* lora = peft.as<LoraConfig>()) {
    ctx.peft_rank = lora->rank;
    ctx.lora_alpha = lora->alpha;
    ctx.lora_dropout = lora->dropout;
  }
  head.vocab_size = embeddings.vocab_size;
  if (auto* lora = peft.as<LoraConfig>()) {
    auto add = [&](const std::vector<PeftTargetConfig>& list, const std::string& field,
                   std::vector<config::LinearTarget>& into) {
      for (size_t i = 0; i < list.size(); ++i) {
        const auto& t = list[i];
        config::LinearTarget target;
        target.name = t.name;
        if (t.layers && t.layers->size() == 2) target.layers = {(*t.layers)[0], (*t.layers)[1]};
        target.mark = t.mark.known() ? t.mark : lora->mark_of(field);
        target.path = ctx.path_of("peft." + field + "[" + std::to_string(i) + "]");
        into.push_back(std::move(target));
      }
    };
    if (lora->targets) add(*lora->targets, "targets", ctx.scope->targets);
    if (lora->modules_to_save)
      add(*lora->modules_to_save, "modules_to_save", ctx.scope->full_training);
  }
  ctx.number_layers = true;
}

namespace {

// Adapters on a frozen linear never get a gradient: the parameter table would hold weights that
// do not compute anything a run can change, which is a mistake worth naming.
void report_frozen_adapters(LanguageModelConfig& model, const LoraConfig& lora,
                            const ResolveContext& ctx) {
  std::vector<std::string> frozen;
  config::for_each_config(model, ctx.path, [&](config::Config& c, const std::string& path) {
    const auto* linear = dynamic_cast<const LinearConfig*>(&c);
    if (linear && linear->apply_peft.value_or(false) && linear->lora_rank > 0 &&
        !linear->adapters_train)
      frozen.push_back(path);
  });
  if (frozen.empty()) return;
  std::string list;
  for (size_t i = 0; i < frozen.size() && i < 6; ++i) list += (i ? ", " : "") + frozen[i];
  if (frozen.size() > 6) list += " and " + std::to_string(frozen.size() - 6) + " more";
  ctx.state->diagnostics->error(
      lora.mark, ctx.path_of("peft"),
      "LoRA adapters on " + std::to_string(frozen.size()) +
          " frozen linear layer(s) (lr scale 0 or a fusion model's trainable toggles) could "
          "never train: " + list +
          "; leave them out of `targets`, or set allow_frozen_targets: true to keep them");
}

}  // namespace

void LanguageModelConfig::finish(ResolveContext& ctx) {
  const auto length = ctx.scope->decoder_length;
  for (const auto& t : ctx.scope->targets) {
    // Reported already: a reversed range (LoraConfig::validate), a split shared block.
    if (t.reported || (t.layers && t.layers->first > t.layers->second)) continue;
    if (t.layers && length && t.layers->second >= *length) {
      ctx.state->diagnostics->error(
          t.mark, t.path,
          "target '" + t.name + "' names layers " + std::to_string(t.layers->first) + "-" +
              std::to_string(t.layers->second) + ", but the decoder has " +
              std::to_string(*length) + " layers (0-" + std::to_string(*length - 1) + ")");
      continue;
    }
    if (t.matches > 0) continue;
    std::string message = "target '" + t.name + "' matches no linear layer";
    if (t.layers) {
      message += " in layers " + std::to_string(t.layers->first) + "-" +
                 std::to_string(t.layers->second) + " (the decoder has " +
                 std::to_string(ctx.num_layers) + " layers)";
    } else if (auto guess = config::did_you_mean(t.name, ctx.scope->linear_names)) {
      message += "; did you mean '" + *guess + "'?";
    }
    ctx.state->diagnostics->error(
        t.mark, t.path, message + " (linear names: " + config::join(ctx.scope->linear_names) + ")");
  }
  for (const auto& t : ctx.scope->full_training) {
    if (t.matches > 0 || (t.layers && t.layers->first > t.layers->second)) continue;
    ctx.state->diagnostics->error(
        t.mark, t.path,
        "module '" + t.name + "' to train in full matches nothing" +
            (t.layers ? " in layers " + std::to_string(t.layers->first) + "-" +
                            std::to_string(t.layers->second)
                      : std::string()) +
            " (a field, kind or type name on a path of the model, such as head or mlp)");
  }
  if (auto* lora = peft.as<LoraConfig>()) {
    lora->targets.reset();
    if (!lora->allow_frozen_targets) report_frozen_adapters(*this, *lora, ctx);
  }
}

void register_language_model(config::Registry& registry) { registry.add<LanguageModelConfig>(); }

}  // namespace blocks
