// phi3: Phi3Config (configuration_phi3.py) and Phi3ForCausalLM (modeling_phi3.py): Llama's block
// with query, key and value fused in qkv_proj and gate and up in gate_up_proj (split on load,
// joined on export), resid_pdrop on both branch outputs, one sliding window for every layer.
// Phi3 reads rope type yarn (and su) as longrope, whose per-frequency factors blocks cannot say.
#include "framework/hf/families/llama.h"

namespace blocks::hf {
namespace {

using A = Architecture;
using config::Diagnostics;
using config::Node;

Keys phi3_keys() {
  return join_keys({
      common_keys(),
      llama_core_keys(),
      {uniform_window_key(),
       field("resid_pdrop", &A::residual_dropout, "block dropout"),
       {"embd_pdrop", nullptr, [](const A&, nlohmann::json& out) { out["embd_pdrop"] = 0.0; },
        "Phi3Model never applies it (no embedding dropout in modeling_phi3.py)"},
       {"original_max_position_embeddings", nullptr,
        [](const A& a, nlohmann::json& out) {
          if (a.max_position_embeddings)
            out["original_max_position_embeddings"] = *a.max_position_embeddings;
        },
        "the trained context of longrope scaling, which blocks does not convert; written as "
        "max_position_embeddings"},
       {"partial_rotary_factor",
        [](const Node& v, const std::string& path, A&, Diagnostics& d) {
          double fraction = 1.0;
          if (parse(v, path, d, fraction) && fraction != 1.0)
            d.error(v.mark, path,
                    "rotary on a fraction of each head is not supported (found " + v.text +
                        "; only 1.0 converts)");
        },
        nullptr, "must be 1.0: blocks rotates whole heads"}},
  });
}

std::vector<TensorName> phi3_names() {
  const std::string l = kLlamaLayer;
  return {
      {R"(model\.embed_tokens\.weight)", {"embeddings.word.weight"}},
      {l + R"(input_layernorm\.weight)", {"decoder.$1.normalization.weight"}},
      // [q; k; v] rows: equal thirds while num_key_value_heads is num_attention_heads (Limit).
      {l + R"(self_attn\.qkv_proj\.weight)",
       {"decoder.$1.mixer.query.weight", "decoder.$1.mixer.key.weight",
        "decoder.$1.mixer.value.weight"}},
      {l + R"(self_attn\.o_proj\.weight)", {"decoder.$1.mixer.output.weight"}},
      {l + R"(post_attention_layernorm\.weight)", {"decoder.$1.mlp_normalization.weight"}},
      // Phi3MLP: gate, up = gate_up_proj(x).chunk(2, dim=-1).
      {l + R"(mlp\.gate_up_proj\.weight)",
       {"decoder.$1.mlp.gate.weight", "decoder.$1.mlp.up.weight"}},
      {l + R"(mlp\.down_proj\.weight)", {"decoder.$1.mlp.down.weight"}},
      {R"(model\.norm\.weight)", {"head.normalization.weight"}},
      {R"(lm_head\.weight)", {"head.output.weight"}, false, 0, 0, /*tied=*/true},
  };
}

Family phi3() {
  Family f;
  f.model_type = "phi3";
  f.class_name = "Phi3ForCausalLM";
  f.export_order = 50;
  Architecture& a = f.defaults;  // Phi3Config
  a.vocab_size = 32064;
  a.hidden_size = 3072;
  a.intermediate_size = 8192;
  a.num_layers = 32;
  a.heads = 32;
  a.norm_epsilon = 1e-5;
  a.rope.theta = 10000.0;
  f.keys = phi3_keys();
  f.tensors = phi3_names();
  f.rope_types = {"default"};
  f.windows = Windows::uniform;
  f.residual_dropout = true;
  f.limits = {{"num_key_value_heads", "mixer.head_groups",
               [](const A& a) { return a.head_groups == 0 || a.head_groups == a.heads; },
               [](const A& a) {
                 return std::to_string(a.head_groups) + " key/value heads for " +
                        std::to_string(a.heads) + " query heads";
               },
               "blocks' phi3 name table splits the fused qkv_proj in equal thirds, so key and "
               "value need as many heads as the query"}};
  return f;
}

}  // namespace
}  // namespace blocks::hf

namespace blocks {
void register_hf_phi3(hf::Families& families) { families.add(hf::phi3()); }
}  // namespace blocks
