// llama: LlamaConfig (configuration_llama.py) and LlamaForCausalLM's state dict
// (modeling_llama.py). Also the core the other Llama-style families build on (llama.h).
#include "framework/hf/families/llama.h"

namespace blocks::hf {

using A = Architecture;
using config::Diagnostics;
using config::Node;

const char* const kLlamaLayer = R"(model\.layers\.(\d+)\.)";

Keys llama_core_keys() {
  return join_keys({
      {size("vocab_size", &A::vocab_size, "embeddings.vocab_size"),
       size("hidden_size", &A::hidden_size, "hidden_size"),
       size("intermediate_size", &A::intermediate_size, "mlp.intermediate_size"),
       size("num_hidden_layers", &A::num_layers, "decoder.num_layers"),
       size("num_attention_heads", &A::heads, "mixer.heads"),
       size("num_key_value_heads", &A::head_groups, "mixer.head_groups; null: heads", 0),
       {"head_dim", count(&A::head_size, 0),
        [](const A& a, nlohmann::json& out) {  // only where it is not hidden_size / heads
          const bool even =
              a.heads > 0 && a.hidden_size % a.heads == 0 && a.head_size == a.hidden_size / a.heads;
          if (a.head_size && !even) out["head_dim"] = a.head_size;
        },
        "mixer.head_size; null: hidden_size / heads"},
       activation_key("hidden_act", "mlp.activation (gated)", "gelu_pytorch_tanh"),
       field("rms_norm_eps", &A::norm_epsilon, "normalization.epsilon"),
       {"rope_theta",
        [](const Node& v, const std::string& path, A& a, Diagnostics& d) {
          parse(v, path, d, a.rope.theta);
        },
        [](const A& a, nlohmann::json& out) { out["rope_theta"] = a.rope.theta; }, "rotary.theta"},
       {"rope_scaling", keep(&A::rope_scaling),
        [](const A& a, nlohmann::json& out) { out["rope_scaling"] = rope_scaling_json(a.rope); },
        "rotary: null, default, llama3 or yarn"},
       {"rope_parameters", keep(&A::rope_parameters), nullptr,
        "rotary: default, llama3 or yarn (written as rope_scaling)"},
       field("attention_dropout", &A::attention_dropout, "mixer.dropout"),
       field("tie_word_embeddings", &A::tied, "head.tied"),
       {"max_position_embeddings", nullptr,
        [](const A& a, nlohmann::json& out) {
          if (a.max_position_embeddings)
            out["max_position_embeddings"] = *a.max_position_embeddings;
        },
        "rotary positions have no table: the trained context length sizes nothing"}},
  });
}

Key uniform_window_key() {
  return {"sliding_window", count(&A::sliding_window, 0),
          [](const A& a, nlohmann::json& out) {
            const int64_t w = a.windows.empty() ? 0 : a.windows[0];
            out["sliding_window"] = w ? nlohmann::json(w) : nlohmann::json();
          },
          "mixer.window_size; null: none"};
}

std::vector<TensorName> llama_attention_and_norm_names() {
  const std::string l = kLlamaLayer;
  return {
      {R"(model\.embed_tokens\.weight)", {"embeddings.word.weight"}},
      {l + R"(input_layernorm\.weight)", {"decoder.$1.normalization.weight"}},
      {l + R"(self_attn\.q_proj\.(weight|bias))", {"decoder.$1.mixer.query.$2"}},
      {l + R"(self_attn\.k_proj\.(weight|bias))", {"decoder.$1.mixer.key.$2"}},
      {l + R"(self_attn\.v_proj\.(weight|bias))", {"decoder.$1.mixer.value.$2"}},
      {l + R"(self_attn\.o_proj\.(weight|bias))", {"decoder.$1.mixer.output.$2"}},
      {l + R"(self_attn\.rotary_emb\.inv_freq)", {}},  // a buffer of older checkpoints
      {l + R"(post_attention_layernorm\.weight)", {"decoder.$1.mlp_normalization.weight"}},
      {R"(model\.norm\.weight)", {"head.normalization.weight"}},
      {R"(lm_head\.weight)", {"head.output.weight"}, false, 0, 0, /*tied=*/true},
  };
}

std::vector<TensorName> llama_mlp_names() {
  const std::string l = kLlamaLayer;
  return {
      {l + R"(mlp\.gate_proj\.weight)", {"decoder.$1.mlp.gate.weight"}},
      {l + R"(mlp\.up_proj\.weight)", {"decoder.$1.mlp.up.weight"}},
      {l + R"(mlp\.down_proj\.weight)", {"decoder.$1.mlp.down.weight"}},
  };
}

namespace {

Family llama() {
  Family f;
  f.model_type = "llama";
  f.class_name = "LlamaForCausalLM";
  f.export_order = 10;
  Architecture& a = f.defaults;  // LlamaConfig
  a.vocab_size = 32000;
  a.hidden_size = 4096;
  a.intermediate_size = 11008;
  a.num_layers = 32;
  a.heads = 32;
  a.norm_epsilon = 1e-6;
  a.rope.theta = 10000.0;
  f.keys = join_keys({
      common_keys(),
      llama_core_keys(),
      {{"attention_bias",
        [](const Node& v, const std::string& path, A& a, Diagnostics& d) {
          // Llama's attention_bias puts a bias on all four projections, o_proj included.
          bool bias = false;
          if (parse(v, path, d, bias))
            a.query_bias = a.key_bias = a.value_bias = a.output_bias = bias;
        },
        [](const A& a, nlohmann::json& out) { out["attention_bias"] = a.query_bias; },
        "query, key, value and output bias"},
       field("mlp_bias", &A::mlp_bias, "gate, up and down bias"),
       {"pretraining_tp", nullptr, nullptr,
        "Meta's tensor-parallel slicing of the linears: the same products"}},
  });
  f.tensors = llama_attention_and_norm_names();
  for (auto& t : llama_mlp_names()) f.tensors.push_back(t);
  f.rope_types = {"default", "llama3", "yarn"};
  f.biases = Biases::per_branch;
  return f;
}

}  // namespace

}  // namespace blocks::hf

namespace blocks {
void register_hf_llama(hf::Families& families) { families.add(hf::llama()); }
}  // namespace blocks
