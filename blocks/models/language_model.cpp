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
  if (auto* lora = peft.as<LoraConfig>(); lora && lora->targets) {
    for (size_t i = 0; i < lora->targets->size(); ++i) {
      const auto& t = (*lora->targets)[i];
      config::LinearTarget target;
      target.name = t.name;
      if (t.layers && t.layers->size() == 2) target.layers = {(*t.layers)[0], (*t.layers)[1]};
      target.mark = t.mark.known() ? t.mark : lora->mark_of("targets");
      target.path = ctx.path_of("peft.targets[" + std::to_string(i) + "]");
      ctx.scope->targets.push_back(std::move(target));
    }
  }
  ctx.number_layers = true;
}

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
  if (auto* lora = peft.as<LoraConfig>()) lora->targets.reset();
}

void register_language_model(config::Registry& registry) { registry.add<LanguageModelConfig>(); }

}  // namespace blocks
