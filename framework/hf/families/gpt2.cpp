// gpt2: GPT2Config (configuration_gpt2.py) and GPT2LMHeadModel's state dict (modeling_gpt2.py):
// learned positions, LayerNorm, a GELU MLP, a bias on every linear, a tied head; Conv1D weights
// stored [in, out] and query, key and value fused in c_attn.
#include "framework/hf/family.h"

namespace blocks::hf {
namespace {

using A = Architecture;

Keys gpt2_keys() {
  return join_keys({
      common_keys(),
      {size("vocab_size", &A::vocab_size, "embeddings.vocab_size"),
       size("n_positions", &A::learned_positions, "embeddings.max_positions"),
       size("n_embd", &A::hidden_size, "hidden_size"),
       size("n_layer", &A::num_layers, "decoder.num_layers"),
       size("n_head", &A::heads, "mixer.heads"),
       size("n_inner", &A::intermediate_size, "mlp.intermediate_size; null: 4 * n_embd", 0),
       activation_key("activation_function", "mlp.activation", "gelu_new"),
       field("resid_pdrop", &A::residual_dropout, "block dropout"),
       field("embd_pdrop", &A::embedding_dropout, "embeddings.dropout"),
       field("attn_pdrop", &A::attention_dropout, "mixer.dropout"),
       field("layer_norm_epsilon", &A::norm_epsilon, "normalization.epsilon"),
       {"scale_attn_weights", to(&A::scale_attention),
        [](const A& a, nlohmann::json& out) { out["scale_attn_weights"] = a.scale_attention; },
        "false: mixer.softmax_scale 1.0"},
       only_key("scale_attn_by_inverse_layer_idx", "false",
                "scaling attention by 1 / (layer + 1) is not supported"),
       field("tie_word_embeddings", &A::tied, "head.tied"),
       // Its legacy duplicate, still read by older tools.
       {"n_ctx", nullptr,
        [](const A& a, nlohmann::json& out) { out["n_ctx"] = a.learned_positions; },
        "legacy duplicate of n_positions; transformers no longer reads it"}},
      irrelevant({"reorder_and_upcast_attn"},
                 "computes the same attention in float32 with keys pre-scaled: precision only"),
      irrelevant({"summary_type", "summary_use_proj", "summary_activation",
                  "summary_proj_to_labels", "summary_first_dropout"},
                 "GPT2DoubleHeadsModel's classification head, not part of the LM"),
  });
}

// Checkpoints of GPT2LMHeadModel prefix `transformer.`, those of GPT2Model do not.
std::vector<TensorName> gpt2_names() {
  const std::string t = R"((?:transformer\.)?)";
  const std::string h = t + R"(h\.(\d+)\.)";
  const bool T = true;  // transposed: Conv1D
  return {
      {t + R"(wte\.weight)", {"embeddings.word.weight"}},
      {t + R"(wpe\.weight)", {"embeddings.position.weight"}},
      {h + R"(ln_1\.(weight|bias))", {"decoder.$1.normalization.$2"}},
      {h + R"(attn\.c_attn\.weight)",
       {"decoder.$1.mixer.query.weight", "decoder.$1.mixer.key.weight",
        "decoder.$1.mixer.value.weight"},
       T},
      {h + R"(attn\.c_attn\.bias)",
       {"decoder.$1.mixer.query.bias", "decoder.$1.mixer.key.bias", "decoder.$1.mixer.value.bias"}},
      {h + R"(attn\.c_proj\.weight)", {"decoder.$1.mixer.output.weight"}, T},
      {h + R"(attn\.c_proj\.bias)", {"decoder.$1.mixer.output.bias"}},
      {h + R"(attn\.(bias|masked_bias))", {}},  // causal-mask buffers
      {h + R"(ln_2\.(weight|bias))", {"decoder.$1.mlp_normalization.$2"}},
      {h + R"(mlp\.c_fc\.weight)", {"decoder.$1.mlp.up.weight"}, T},
      {h + R"(mlp\.c_fc\.bias)", {"decoder.$1.mlp.up.bias"}},
      {h + R"(mlp\.c_proj\.weight)", {"decoder.$1.mlp.down.weight"}, T},
      {h + R"(mlp\.c_proj\.bias)", {"decoder.$1.mlp.down.bias"}},
      {t + R"(ln_f\.(weight|bias))", {"head.normalization.$1"}},
      {R"(lm_head\.weight)", {"head.output.weight"}, false, 0, 0, /*tied=*/true},
  };
}

Family gpt2() {
  Family f;
  f.model_type = "gpt2";
  f.class_name = "GPT2LMHeadModel";
  f.export_order = 0;
  Architecture& a = f.defaults;  // GPT2Config; every linear has a bias; the head is tied
  a.vocab_size = 50257;
  a.learned_positions = 1024;
  a.hidden_size = 768;
  a.num_layers = 12;
  a.heads = 12;
  a.activation = "gelu_tanh";
  a.mlp = "mlp";
  a.normalization = "layer_norm";
  a.norm_epsilon = 1e-5;
  a.rotary = false;
  a.use_sliding_window = false;
  a.tied = true;
  a.attention_dropout = a.embedding_dropout = a.residual_dropout = 0.1;
  a.query_bias = a.key_bias = a.value_bias = a.output_bias = a.mlp_bias = true;
  f.keys = gpt2_keys();
  f.tensors = gpt2_names();
  f.rotary = false;
  f.rope_types = {};
  f.mlp = "mlp";
  f.normalization = "layer_norm";
  f.biases = Biases::all;
  f.embedding_dropout = f.residual_dropout = true;
  f.head_groups = false;
  return f;
}

}  // namespace
}  // namespace blocks::hf

namespace blocks {
void register_hf_gpt2(hf::Families& families) { families.add(hf::gpt2()); }
}  // namespace blocks
