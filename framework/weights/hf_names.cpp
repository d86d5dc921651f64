// Hugging Face checkpoint names of each family: the torch-free name tables of the families
// (framework/hf/families/, hf::Family::tensors) as weights::Mappings. Order matters: the first
// rule whose `from` matches a name applies.
#include <map>

#include "framework/hf/family.h"
#include "framework/hf/llava.h"
#include "framework/hf/mllama.h"
#include "framework/weights/mapping.h"

namespace blocks::weights {

namespace {

MappingRule rule_of(const hf::TensorName& name) {
  MappingRule r;
  r.from = name.from;
  r.to = name.to;
  r.transpose = name.transpose;
  r.split_dim = name.split_dim;
  r.split_sizes = name.split_sizes;
  r.stack_capture = name.stack_capture;
  // Tied models (tie_word_embeddings) share the output matrix with the token embeddings; some
  // checkpoints still store it.
  if (name.tied) r.tied_to = "embeddings.word.weight";
  // Capture 1 of every rule aimed at `decoder.$1.` is the layer index (Mapping::layers).
  for (const auto& to : r.to)
    if (to.rfind("decoder.$1.", 0) == 0) r.layer_capture = 1;
  return r;
}

const std::map<std::string, Mapping>& tables() {
  static const std::map<std::string, Mapping> all = [] {
    std::map<std::string, Mapping> out;
    for (const auto& family : hf::families().all()) {
      Mapping m{family.model_type, {}};
      for (const auto& name : family.tensors) m.rules.push_back(rule_of(name));
      out.emplace(family.model_type, std::move(m));
    }
    return out;
  }();
  return all;
}

}  // namespace

std::vector<std::string> hf_mapping_names() {
  std::vector<std::string> names;
  for (const auto& [name, mapping] : tables()) names.push_back(name);
  return names;
}

Mapping hf_mapping(const std::string& model_type, const config::Json& model,
                   const std::string& text_type, std::vector<std::string>* notes) {
  // A vision tower alone (encoder_model): the component names, below the model's `encoder`.
  if (model_type == "clip_vision_model" || model_type == "clip")
    return component_mapping(model_type, model, notes);
  if (model_type == "mllama") {
    Mapping m{"mllama", {}};
    for (const auto& name : hf::mllama_names(model, notes)) m.rules.push_back(rule_of(name));
    return m;
  }
  if (model_type != "llava") return hf_mapping(model_type);
  const hf::Family* text = hf::families().find(text_type);
  if (!text)
    throw MappingError("no built-in name mapping for a llava text_config of model_type '" +
                       text_type + "' (known: " + hf::family_list() + ")");
  const hf::LlavaNames names = hf::llava_names(*text, model);
  Mapping m{"llava", {}};
  for (const auto& name : names.vision) m.rules.push_back(rule_of(name));
  for (const auto& name : names.text) {
    MappingRule r = rule_of(name);
    r.layer_capture = 0;
    if (!r.tied_to.empty()) r.tied_to = "decoder." + r.tied_to;
    m.rules.push_back(std::move(r));
  }
  if (notes) notes->insert(notes->end(), names.notes.begin(), names.notes.end());
  return m;
}

Mapping component_mapping(const std::string& model_type, const config::Json& component,
                          std::vector<std::string>* notes) {
  if (model_type != "clip_vision_model" && model_type != "clip") return hf_mapping(model_type);
  if (!component.contains("encoder"))
    throw MappingError("a " + model_type + " checkpoint loads into an encoder slot of a fusion "
                       "model (encoders.NAME), not here");
  Mapping m{model_type, {}};
  for (const auto& name : hf::clip_vision_names(component["encoder"], notes))
    m.rules.push_back(rule_of(name));
  return m;
}

const Mapping& hf_mapping(const std::string& model_type) {
  auto it = tables().find(model_type);
  if (it != tables().end()) return it->second;
  throw MappingError("no built-in name mapping for model_type '" + model_type +
                     "' (known: " + hf::family_list() + ")");
}

}  // namespace blocks::weights
