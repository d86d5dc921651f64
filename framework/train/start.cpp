#include "framework/train/start.h"

#include "blocks/registry.h"
#include "framework/nn/model_tensors.h"
#include "framework/weights/adapters.h"
#include "framework/weights/hf_folder.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "framework/weights/mapping_rules.h"

namespace blocks::train {

std::string load_start_weights(const config::Document& document,
                               const nn::ParameterTable& parameters, const std::string& weights,
                               const std::string& map) {
  weights::check_architecture(document, {weights}, blocks::registry());
  const auto sources = weights::weight_sources({weights});
  // A base checkpoint holds no adapters: a LoRA model's keep their initialization (B = 0).
  const bool base_only = !weights::holds_adapters(sources.files);
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : parameters)
    if (!base_only || (p.role != "lora_a" && p.role != "lora_b"))
      targets.emplace_back(p.name, p.tensor);
  if (!map.empty()) {
    weights::load_mapped(targets, sources.files, weights::load_mapping_file(map), true);
  } else if (!sources.model_type.empty()) {
    const auto mapping =
        weights::hf_mapping(sources.model_type, document.dump()["model"], sources.text_type);
    weights::load_mapped(targets, sources.files, mapping, true);
  } else {
    weights::load_safetensors(targets, sources.files, true);
  }
  return sources.model_type;
}

int64_t load_start_adapters(const config::Document& document,
                            const nn::ParameterTable& parameters, const std::string& adapters,
                            const std::string& family) {
  const bool folder = weights::is_peft_folder(adapters);
  return weights::load_adapters(nn::model_tensors(parameters), adapters, folder ? family : "",
                                folder ? weights::lora_settings(document.dump()["model"])
                                       : weights::LoraSettings{})
      .loaded;
}

}  // namespace blocks::train
