#include "blocks/models/language_model_module.h"

#include <algorithm>

namespace blocks {

LanguageModel::LanguageModel(const LanguageModelConfig& c, Builder& b, const std::string& path)
    : config_(c), path_(path) {
  embeddings = register_module(
      "embeddings", b.build_as<Embeddings>(c.embeddings, child_path(c, path, c.embeddings)));
  decoder = register_module("decoder",
                            b.build_as<BlockModule>(*c.decoder, child_path(c, path, *c.decoder)));
  head = register_module("head", b.build_as<Head>(c.head, child_path(c, path, c.head)));
  if (c.head.tied) head->tie(embeddings->word->weight);
}

std::vector<InputSpec> LanguageModel::inputs() const {
  using Type = InputSpec::Type;
  const std::string either = "tokens, embeddings";
  return {{"tokens", Type::integer, 2, false, either, "token ids [batch, tokens]"},
          {"embeddings", Type::floating, 3, false, either,
           "ready input embeddings [batch, tokens, " + std::to_string(hidden_size()) + "]"},
          {"attention_mask", Type::mask, 2, false, "",
           "[batch, cached + new tokens]: 1 for real tokens, 0 for padding"},
          {"positions", Type::integer, 2, false, "", "absolute positions [batch, tokens]"}};
}

std::vector<std::string> LanguageModel::hidden_state_names() const {
  std::vector<std::string> names = {"embeddings"};
  for (int64_t i = 0; i < config_.decoder->layer_count(); ++i)
    names.push_back("decoder." + std::to_string(i));
  names.push_back("decoder");
  return names;
}

Step LanguageModel::make_step(const ModelInput& input, const at::Tensor& first) const {
  const int64_t batch = first.size(0), tokens = first.size(1);
  Step step;
  step.cache = input.cache;
  step.past = input.cache ? input.cache->length() : 0;
  step.memories = input.memories.empty() ? nullptr : &input.memories;
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
  return step;
}

ModelOutput LanguageModel::forward(const ModelInput& input) { return forward(input, nullptr); }

ModelOutput LanguageModel::forward(const ModelInput& input, LayerHook* hook) {
  check_inputs(input, path_);
  const at::Tensor& first = input.tokens.defined() ? input.tokens : input.embeddings;
  Step step = make_step(input, first);
  step.hook = hook;
  const auto wants = [&](const std::string& name) {
    return std::find(input.hidden_states.begin(), input.hidden_states.end(), name) !=
           input.hidden_states.end();
  };
  std::vector<at::Tensor> block_outputs;
  const bool wants_blocks =
      std::any_of(input.hidden_states.begin(), input.hidden_states.end(),
                  [](const std::string& n) { return n.rfind("decoder.", 0) == 0; });
  if (wants_blocks) step.block_outputs = &block_outputs;
  ModelOutput out;
  at::Tensor x = embeddings->forward(input.tokens, input.embeddings, step.positions);
  if (wants("embeddings")) out.hidden_states["embeddings"] = x;
  step.layer = "decoder";
  x = decoder->forward(x, step);
  if (wants("decoder")) out.hidden_states["decoder"] = x;
  for (size_t i = 0; i < block_outputs.size(); ++i) {
    const std::string name = "decoder." + std::to_string(i);
    if (wants(name)) out.hidden_states[name] = block_outputs[i];
  }
  if (input.logits_to_keep > 0 && input.logits_to_keep < x.size(1))
    x = x.narrow(1, x.size(1) - input.logits_to_keep, input.logits_to_keep);
  out.logits = head->forward(x);
  out.aux_loss = at::zeros({}, x.options().dtype(at::kFloat));
  for (const auto& loss : step.aux_losses) out.aux_loss = out.aux_loss + loss;
  if (input.cache) input.cache->advance(first.size(1));
  return out;
}

void register_modules_language_model(nn::ModuleRegistry& modules) {
  modules.add<LanguageModelConfig>(
      [](const LanguageModelConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<LanguageModel>(c, b, path);
      });
}

}  // namespace blocks
