// Hugging Face checkpoint names of each family, as data: one table per family (following the
// state dicts of transformers' modeling_{llama,mistral,qwen2,mixtral,gpt2}.py). Order matters:
// the first rule whose `from` matches a name applies.
#include <map>

#include "framework/weights/mapping.h"

namespace blocks::weights {

namespace {

const char* const kLayer = R"(model\.layers\.(\d+)\.)";

MappingRule rule(std::string from, std::vector<std::string> to) {
  MappingRule r;
  r.from = std::move(from);
  r.to = std::move(to);
  return r;
}

// An output matrix that tied models (tie_word_embeddings) share with the token embeddings:
// some checkpoints still store it.
MappingRule tied(MappingRule r) {
  r.tied_to = "embeddings.word.weight";
  return r;
}

// Llama and the families that share its names (Mistral, Qwen2: q/k/v biases where present).
std::vector<MappingRule> llama_attention_and_norms() {
  const std::string l = kLayer;
  return {
      rule(R"(model\.embed_tokens\.weight)", {"embeddings.word.weight"}),
      rule(l + R"(input_layernorm\.weight)", {"decoder.$1.normalization.weight"}),
      rule(l + R"(self_attn\.q_proj\.(weight|bias))", {"decoder.$1.mixer.query.$2"}),
      rule(l + R"(self_attn\.k_proj\.(weight|bias))", {"decoder.$1.mixer.key.$2"}),
      rule(l + R"(self_attn\.v_proj\.(weight|bias))", {"decoder.$1.mixer.value.$2"}),
      rule(l + R"(self_attn\.o_proj\.(weight|bias))", {"decoder.$1.mixer.output.$2"}),
      rule(l + R"(self_attn\.rotary_emb\.inv_freq)", {}),  // a buffer of older checkpoints
      rule(l + R"(post_attention_layernorm\.weight)", {"decoder.$1.mlp_normalization.weight"}),
      rule(R"(model\.norm\.weight)", {"head.normalization.weight"}),
      tied(rule(R"(lm_head\.weight)", {"head.output.weight"})),
  };
}

Mapping llama(const std::string& name) {
  Mapping m{name, llama_attention_and_norms()};
  const std::string l = kLayer;
  m.rules.push_back(rule(l + R"(mlp\.gate_proj\.weight)", {"decoder.$1.mlp.gate.weight"}));
  m.rules.push_back(rule(l + R"(mlp\.up_proj\.weight)", {"decoder.$1.mlp.up.weight"}));
  m.rules.push_back(rule(l + R"(mlp\.down_proj\.weight)", {"decoder.$1.mlp.down.weight"}));
  return m;
}

Mapping mixtral() {
  Mapping m{"mixtral", llama_attention_and_norms()};
  const std::string moe = std::string(kLayer) + R"(block_sparse_moe\.)";
  m.rules.push_back(rule(moe + R"(gate\.weight)", {"decoder.$1.mlp.router.weight"}));
  for (const auto& [hf, blocks] : {std::pair{"w1", "gate"}, {"w3", "up"}, {"w2", "down"}}) {
    MappingRule r = rule(moe + R"(experts\.(\d+)\.)" + hf + R"(\.weight)",
                         {std::string("decoder.$1.mlp.") + blocks + ".weight"});
    r.stack_capture = 2;  // experts.{e} -> [e] of the stacked [experts, out, in]
    m.rules.push_back(r);
  }
  return m;
}

// GPT-2's Conv1D stores weights [in, out]: transposed. c_attn holds query, key and value fused.
// Checkpoints of GPT2LMHeadModel prefix `transformer.`, those of GPT2Model do not.
Mapping gpt2() {
  const std::string t = R"((?:transformer\.)?)";
  const std::string h = t + R"(h\.(\d+)\.)";
  auto transposed = [](MappingRule r) {
    r.transpose = true;
    return r;
  };
  MappingRule qkv = transposed(rule(h + R"(attn\.c_attn\.weight)",
                                    {"decoder.$1.mixer.query.weight", "decoder.$1.mixer.key.weight",
                                     "decoder.$1.mixer.value.weight"}));
  MappingRule qkv_bias = rule(
      h + R"(attn\.c_attn\.bias)",
      {"decoder.$1.mixer.query.bias", "decoder.$1.mixer.key.bias", "decoder.$1.mixer.value.bias"});
  return {"gpt2",
          {
              rule(t + R"(wte\.weight)", {"embeddings.word.weight"}),
              rule(t + R"(wpe\.weight)", {"embeddings.position.weight"}),
              rule(h + R"(ln_1\.(weight|bias))", {"decoder.$1.normalization.$2"}), qkv, qkv_bias,
              transposed(rule(h + R"(attn\.c_proj\.weight)", {"decoder.$1.mixer.output.weight"})),
              rule(h + R"(attn\.c_proj\.bias)", {"decoder.$1.mixer.output.bias"}),
              rule(h + R"(attn\.(bias|masked_bias))", {}),  // causal-mask buffers
              rule(h + R"(ln_2\.(weight|bias))", {"decoder.$1.mlp_normalization.$2"}),
              transposed(rule(h + R"(mlp\.c_fc\.weight)", {"decoder.$1.mlp.up.weight"})),
              rule(h + R"(mlp\.c_fc\.bias)", {"decoder.$1.mlp.up.bias"}),
              transposed(rule(h + R"(mlp\.c_proj\.weight)", {"decoder.$1.mlp.down.weight"})),
              rule(h + R"(mlp\.c_proj\.bias)", {"decoder.$1.mlp.down.bias"}),
              rule(t + R"(ln_f\.(weight|bias))", {"head.normalization.$1"}),
              tied(rule(R"(lm_head\.weight)", {"head.output.weight"})),
          }};
}

// Capture 1 of every rule aimed at `decoder.$1.` is the layer index (Mapping::layers).
Mapping with_layers(Mapping m) {
  for (auto& r : m.rules)
    for (const auto& to : r.to)
      if (to.rfind("decoder.$1.", 0) == 0) r.layer_capture = 1;
  return m;
}

const std::map<std::string, Mapping>& tables() {
  static const std::map<std::string, Mapping> all = {
      {"gpt2", with_layers(gpt2())},
      {"llama", with_layers(llama("llama"))},
      {"mistral", with_layers(llama("mistral"))},
      {"mixtral", with_layers(mixtral())},
      {"qwen2", with_layers(llama("qwen2"))},
  };
  return all;
}

}  // namespace

std::vector<std::string> hf_mapping_names() {
  std::vector<std::string> names;
  for (const auto& [name, mapping] : tables()) names.push_back(name);
  return names;
}

const Mapping& hf_mapping(const std::string& model_type) {
  auto it = tables().find(model_type);
  if (it != tables().end()) return it->second;
  std::string known;
  for (const auto& name : hf_mapping_names()) known += (known.empty() ? "" : ", ") + name;
  throw MappingError("no built-in name mapping for model_type '" + model_type +
                     "' (known: " + known + ")");
}

}  // namespace blocks::weights
