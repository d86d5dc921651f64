#include "framework/train/start.h"

#include "blocks/registry.h"
#include "framework/weights/hf_folder.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "framework/weights/mapping_rules.h"

namespace blocks::train {

void load_start_weights(const config::Document& document, const nn::ParameterTable& parameters,
                        const std::string& weights, const std::string& map) {
  weights::check_architecture(document, {weights}, blocks::registry());
  const auto sources = weights::weight_sources({weights});
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : parameters) targets.emplace_back(p.name, p.tensor);
  if (!map.empty()) {
    weights::load_mapped(targets, sources.files, weights::load_mapping_file(map), true);
  } else if (!sources.model_type.empty()) {
    const auto mapping =
        weights::hf_mapping(sources.model_type, document.dump()["model"], sources.text_type);
    weights::load_mapped(targets, sources.files, mapping, true);
  } else {
    weights::load_safetensors(targets, sources.files, true);
  }
}

}  // namespace blocks::train
