// mistral: MistralConfig (configuration_mistral.py): Llama's block without biases, one sliding
// window for every layer; Llama's checkpoint names.
#include "framework/hf/families/llama.h"

namespace blocks::hf {
namespace {

Family mistral() {
  Family f;
  f.model_type = "mistral";
  f.class_name = "MistralForCausalLM";
  f.export_order = 20;
  Architecture& a = f.defaults;  // MistralConfig
  a.vocab_size = 32000;
  a.hidden_size = 4096;
  a.intermediate_size = 14336;
  a.num_layers = 32;
  a.heads = 32;
  a.head_groups = 8;
  a.norm_epsilon = 1e-6;
  a.rope.theta = 10000.0;
  a.sliding_window = 4096;
  f.keys = join_keys({common_keys(), llama_core_keys(), {uniform_window_key()}});
  f.tensors = llama_attention_and_norm_names();
  for (auto& t : llama_mlp_names()) f.tensors.push_back(t);
  f.rope_types = {"default", "llama3", "yarn"};
  f.windows = Windows::uniform;
  return f;
}

}  // namespace
}  // namespace blocks::hf

namespace blocks {
void register_hf_mistral(hf::Families& families) { families.add(hf::mistral()); }
}  // namespace blocks
