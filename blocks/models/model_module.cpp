#include "blocks/models/model_module.h"

#include <algorithm>
#include <set>

#include "framework/config/codec.h"

namespace blocks {

namespace {

// Hugging Face's names for the same inputs, so its files and tokenizers' outputs work as given.
const std::map<std::string, std::string>& aliases() {
  static const std::map<std::string, std::string> names = {{"input_ids", "tokens"},
                                                           {"inputs_embeds", "embeddings"}};
  return names;
}

bool has_type(const at::Tensor& t, InputSpec::Type type) {
  switch (type) {
    case InputSpec::Type::integer:
      return at::isIntegralType(t.scalar_type(), /*includeBool=*/false);
    case InputSpec::Type::floating:
      return at::isFloatingType(t.scalar_type());
    case InputSpec::Type::mask:  // 1 / 0 in any element type, as tokenizers and files give it
      return at::isIntegralType(t.scalar_type(), /*includeBool=*/true) ||
             at::isFloatingType(t.scalar_type());
  }
  return false;
}

std::string names_of(const std::vector<InputSpec>& specs) {
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  return config::join(names);
}

}  // namespace

std::string to_string(InputSpec::Type type) {
  switch (type) {
    case InputSpec::Type::integer:
      return "integer";
    case InputSpec::Type::floating:
      return "floating-point";
    case InputSpec::Type::mask:
      return "a mask (bool, or numbers 1 and 0)";
  }
  return "?";
}

std::vector<std::pair<std::string, at::Tensor>> ModelInput::tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, t] : {std::pair<std::string, const at::Tensor*>{"tokens", &tokens},
                                {"embeddings", &embeddings},
                                {"attention_mask", &attention_mask},
                                {"positions", &positions}})
    if (t->defined()) out.emplace_back(name, *t);
  for (const auto& [name, t] : named)
    if (t.defined()) out.emplace_back(name, t);
  return out;
}

ModelInput ModelInput::from_tensors(std::map<std::string, at::Tensor> tensors) {
  for (const auto& [alias, name] : aliases()) {
    auto it = tensors.find(alias);
    if (it == tensors.end()) continue;
    if (tensors.count(name))
      throw nn::InputError(
          "input", "`" + alias + "` and `" + name + "` are the same input; give one of them");
    tensors[name] = std::move(it->second);
    tensors.erase(it);
  }
  ModelInput input;
  auto take = [&](const char* name, at::Tensor& field) {
    if (auto it = tensors.find(name); it != tensors.end()) {
      field = std::move(it->second);
      tensors.erase(it);
    }
  };
  take("tokens", input.tokens);
  take("embeddings", input.embeddings);
  take("attention_mask", input.attention_mask);
  take("positions", input.positions);
  input.named = std::move(tensors);
  return input;
}

void ModelModule::check_inputs(const ModelInput& input, const std::string& path) const {
  const std::vector<InputSpec> specs = inputs();
  std::map<std::string, std::vector<std::string>> groups;  // one_of group -> given members
  for (const auto& [name, tensor] : input.tensors()) {
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const InputSpec& s) { return s.name == name; });
    if (spec == specs.end())
      throw nn::InputError(
          path, "unexpected input tensor `" + name + "`; this model takes: " + names_of(specs));
    if (!has_type(tensor, spec->type))
      throw nn::InputError(path, "input `" + name + "` must be " + to_string(spec->type) +
                                     ", got " + std::string(c10::toString(tensor.scalar_type())));
    if (tensor.dim() != spec->rank)
      throw nn::InputError(path, "input `" + name + "` must have " + std::to_string(spec->rank) +
                                     " dimensions, got shape " + c10::str(tensor.sizes()));
    // A mask of 2, -1 or 0.5 is a broken input, not "keep": only bool, or 0 and 1, pass.
    if (spec->type == InputSpec::Type::mask && tensor.scalar_type() != at::kBool) {
      const at::Tensor odd = tensor.masked_select((tensor != 0).logical_and(tensor != 1));
      if (odd.numel() > 0)
        throw nn::InputError(path, "input `" + name + "` must hold only 0 (padding) and 1 " +
                                       "(token), or be bool; found " +
                                       config::format_number(odd[0].item<double>()));
    }
    if (!spec->one_of.empty()) groups[spec->one_of].push_back(name);
  }
  std::set<std::string> seen_groups;
  const auto given_tensors = input.tensors();
  for (const auto& spec : specs) {
    const bool given = std::any_of(given_tensors.begin(), given_tensors.end(),
                                   [&](const auto& t) { return t.first == spec.name; });
    if (spec.required && !given)
      throw nn::InputError(path, "missing input tensor `" + spec.name + "` (" + spec.doc + ")");
    if (spec.one_of.empty() || !seen_groups.insert(spec.one_of).second) continue;
    const auto& members = groups[spec.one_of];
    if (members.size() != 1)
      throw nn::InputError(path, "give exactly one of the inputs " + spec.one_of + ", got " +
                                     (members.empty() ? "none" : config::join(members)));
  }
  const std::vector<std::string> known = hidden_state_names();
  for (const auto& name : input.hidden_states)
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw nn::InputError(
          path, "no hidden state `" + name + "`; this model has: " + config::join(known));
}

Model build_model(const config::Config& model, at::TensorOptions options, const std::string& path) {
  return build_model(model, nn::module_registry(), options, path);
}

Model build_model(const config::Config& model, const nn::ModuleRegistry& modules,
                  at::TensorOptions options, const std::string& path) {
  nn::Builder builder(modules, options);
  Model built;
  built.module = builder.build_as<ModelModule>(model, path);
  built.parameters = builder.table(*built.module);
  return built;
}

}  // namespace blocks
