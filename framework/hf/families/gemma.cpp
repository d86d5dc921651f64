// gemma: GemmaConfig (configuration_gemma.py) and GemmaForCausalLM (modeling_gemma.py), Gemma 1:
// embeddings times sqrt(hidden_size) (GemmaModel's normalizer), GemmaRMSNorm x / rms * (1 +
// weight) in float32, a GeGLU MLP, head_dim independent of hidden_size / heads, a tied head.
// GemmaMLP takes its activation from hidden_activation, the tanh GELU when that is null, and
// ignores hidden_act (gemma-2b's config.json says `gelu` there); export writes both.
#include "framework/hf/families/llama.h"

namespace blocks::hf {
namespace {

using A = Architecture;
using config::Diagnostics;
using config::Node;

Key hidden_activation() {
  Key key =
      activation_key("hidden_activation", "mlp.activation; null: gelu_tanh", "gelu_pytorch_tanh");
  auto read = key.read;
  key.read = [read](const Node& v, const std::string& path, A& a, Diagnostics& d) {
    if (v.is_null())
      a.activation = "gelu_tanh";
    else
      read(v, path, a, d);
  };
  return key;
}

Keys gemma_keys() {
  return join_keys({
      common_keys(),
      without(llama_core_keys(), {"head_dim", "hidden_act"}),
      {size("head_dim", &A::head_size, "mixer.head_size (GemmaConfig's default 256)"),
       hidden_activation(),
       {"hidden_act", nullptr,
        [](const A& a, nlohmann::json& out) {
          out["hidden_act"] = hf_activation(a.activation, "gelu_pytorch_tanh");
        },
        "ignored by GemmaMLP, which reads hidden_activation; written the same for readers that "
        "take hidden_act"},
       {"attention_bias",
        [](const Node& v, const std::string& path, A& a, Diagnostics& d) {
          bool bias = false;
          if (parse(v, path, d, bias))
            a.query_bias = a.key_bias = a.value_bias = a.output_bias = bias;
        },
        [](const A& a, nlohmann::json& out) { out["attention_bias"] = a.query_bias; },
        "query, key, value and output bias"},
       only_key("use_bidirectional_attention", "false",
                "bidirectional attention (EmbeddingGemma) is not a causal language model")},
  });
}

Family gemma() {
  Family f;
  f.model_type = "gemma";
  f.class_name = "GemmaForCausalLM";
  f.export_order = 60;
  Architecture& a = f.defaults;  // GemmaConfig (gemma-7b)
  a.vocab_size = 256000;
  a.hidden_size = 3072;
  a.intermediate_size = 24576;
  a.num_layers = 28;
  a.heads = 16;
  a.head_groups = 16;
  a.head_size = 256;
  a.activation = "gelu_tanh";
  a.norm_epsilon = 1e-6;
  a.norm_weight_offset = 1.0;
  a.scale_embeddings = true;
  a.rope.theta = 10000.0;
  a.tied = true;
  f.keys = gemma_keys();
  f.tensors = llama_attention_and_norm_names();
  for (auto& t : llama_mlp_names()) f.tensors.push_back(t);
  f.rope_types = {"default", "llama3", "yarn"};
  f.biases = Biases::attention;
  f.scaled_embeddings = true;
  f.norm_weight_offset = 1.0;
  return f;
}

}  // namespace
}  // namespace blocks::hf

namespace blocks {
void register_hf_gemma(hf::Families& families) { families.add(hf::gemma()); }
}  // namespace blocks
