// qwen2: Qwen2Config (configuration_qwen2.py): Llama's block with q, k and v biases (o none),
// sliding windows per layer (use_sliding_window, max_window_layers, layer_types); Llama's names.
#include <optional>

#include "framework/hf/families/llama.h"

namespace blocks::hf {
namespace {

using A = Architecture;

// The first sliding layer, if any: Qwen2's keys say the windows from there.
std::optional<size_t> first_window(const A& a) {
  for (size_t i = 0; i < a.windows.size(); ++i)
    if (a.windows[i]) return i;
  return std::nullopt;
}

Keys window_keys() {
  return {
      {"sliding_window", count(&A::sliding_window, 0),
       [](const A& a, nlohmann::json& out) {
         const auto first = first_window(a);
         out["sliding_window"] = first ? nlohmann::json(a.windows[*first]) : nlohmann::json();
       },
       "mixer.window_size; null: none"},
      {"use_sliding_window", to(&A::use_sliding_window),
       [](const A& a, nlohmann::json& out) {
         out["use_sliding_window"] = first_window(a).has_value();
       },
       "whether sliding_window applies"},
      {"max_window_layers", to(&A::max_window_layers),
       [](const A& a, nlohmann::json& out) {
         const auto first = first_window(a);
         out["max_window_layers"] = first ? static_cast<int64_t>(*first) : a.num_layers;
       },
       "layers from this index slide"},
      // Written only when the sliding layers are not the ones from max_window_layers on.
      {"layer_types", keep(&A::layer_types),
       [](const A& a, nlohmann::json& out) {
         const auto first = first_window(a);
         bool suffix = true;
         for (size_t i = first.value_or(0); i < a.windows.size(); ++i)
           suffix = suffix && a.windows[i] != 0;
         if (!first || suffix) return;
         nlohmann::json types = nlohmann::json::array();
         for (const int64_t w : a.windows)
           types.push_back(w ? "sliding_attention" : "full_attention");
         out["layer_types"] = types;
       },
       "per-layer window overrides"},
      only_key("use_mrope", "false",
               "multimodal rotary positions (Qwen2-VL's mrope) are not supported"),
  };
}

Family qwen2() {
  Family f;
  f.model_type = "qwen2";
  f.class_name = "Qwen2ForCausalLM";
  f.export_order = 30;
  Architecture& a = f.defaults;  // Qwen2Config; q, k and v always have biases, o none
  a.vocab_size = 151936;
  a.hidden_size = 4096;
  a.intermediate_size = 22016;
  a.num_layers = 32;
  a.heads = 32;
  a.head_groups = 32;
  a.norm_epsilon = 1e-6;
  a.rope.theta = 10000.0;
  a.sliding_window = 4096;
  a.use_sliding_window = false;
  a.max_window_layers = 28;
  a.query_bias = a.key_bias = a.value_bias = true;
  f.keys = join_keys({common_keys(), llama_core_keys(), window_keys()});
  f.tensors = llama_attention_and_norm_names();
  for (auto& t : llama_mlp_names()) f.tensors.push_back(t);
  f.rope_types = {"default", "llama3", "yarn"};
  f.biases = Biases::qkv;
  f.windows = Windows::per_layer;
  return f;
}

}  // namespace
}  // namespace blocks::hf

namespace blocks {
void register_hf_qwen2(hf::Families& families) { families.add(hf::qwen2()); }
}  // namespace blocks
