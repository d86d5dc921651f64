#include "blocks/models/language_model_module.h"

#include "blocks/peft/peft.h"

namespace blocks {

LanguageModel::LanguageModel(const LanguageModelConfig& c, Builder& b, const std::string& path)
    : hidden_size_(c.hidden_size), path_(path) {
  if (const auto* lora = c.peft.as<LoraConfig>()) {
    b.lora_alpha = lora->alpha;
    b.lora_dropout = lora->dropout;
  }
  embeddings = register_module("embeddings", b.build_as<Embeddings>(
                                                 c.embeddings, child_path(c, path, c.embeddings)));
  decoder = register_module("decoder",
                            b.build_as<BlockModule>(*c.decoder, child_path(c, path, *c.decoder)));
  head = register_module("head", b.build_as<Head>(c.head, child_path(c, path, c.head)));
  if (c.head.tied) head->tie(embeddings->word->weight);
}

ModelOutput LanguageModel::forward(const ModelInput& input) {
  if (input.tokens.defined() == input.embeddings.defined())
    throw InputError(path_, "give exactly one of token ids and input embeddings");
  const at::Tensor& first = input.tokens.defined() ? input.tokens : input.embeddings;
  if (first.dim() < 2)
    throw InputError(path_, "inputs must be [batch, tokens, ...], got shape " +
                                c10::str(first.sizes()));
  const int64_t batch = first.size(0), tokens = first.size(1);
  Step step;
  step.cache = input.cache;
  step.past = input.cache ? input.cache->length() : 0;
  const auto long_options = at::TensorOptions().dtype(at::kLong).device(first.device());
  if (input.positions.defined()) {
    if (input.positions.sizes() != at::IntArrayRef{batch, tokens})
      throw InputError(path_, "positions must be [" + std::to_string(batch) + ", " +
                                  std::to_string(tokens) + "], got shape " +
                                  c10::str(input.positions.sizes()));
    step.positions = input.positions.to(at::kLong);
  } else {
    step.positions = at::arange(step.past, step.past + tokens, long_options)
                         .unsqueeze(0)
                         .expand({batch, tokens});
  }
  if (input.attention_mask.defined()) {
    const int64_t keys = step.past + tokens;
    if (input.attention_mask.sizes() != at::IntArrayRef{batch, keys})
      throw InputError(path_, "the attention mask must be [" + std::to_string(batch) + ", " +
                                  std::to_string(keys) + "] (batch, cached + new tokens), got " +
                                  c10::str(input.attention_mask.sizes()));
    step.key_mask = input.attention_mask.to(at::kBool);
  }
  at::Tensor x = embeddings->forward(input.tokens, input.embeddings, step.positions);
  x = decoder->forward(x, step);
  ModelOutput out;
  out.logits = head->forward(x);
  out.aux_loss = at::zeros({}, x.options().dtype(at::kFloat));
  for (const auto& loss : step.aux_losses) out.aux_loss = out.aux_loss + loss;
  if (input.cache) input.cache->advance(tokens);
  return out;
}

Model build_model(const config::Config& model, at::TensorOptions options,
                  const std::string& path) {
  Builder builder(nn::module_registry(), options);
  Model built;
  built.module = builder.build_as<LanguageModel>(model, path);
  built.parameters = builder.table(*built.module);
  return built;
}

void register_modules_language_model(nn::ModuleRegistry& modules) {
  modules.add<LanguageModelConfig>([](const LanguageModelConfig& c, Builder& b,
                                      const std::string& path) {
    return std::make_shared<LanguageModel>(c, b, path);
  });
}

}  // namespace blocks
