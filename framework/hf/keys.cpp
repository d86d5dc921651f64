// The key-table engine and the keys every family shares (PretrainedConfig's, the activation and
// rope_scaling names of transformers' ACT2FN and rope_init_fns).
#include "framework/hf/keys.h"

#include "framework/config/codec.h"

namespace blocks::hf {

using config::Diagnostics;
using config::Node;

bool parse(const Node& v, const std::string& path, Diagnostics& d, int64_t& out) {
  std::optional<int64_t> n;
  if (v.is_scalar() && !v.quoted) n = config::parse_integer(v.text);
  if (!n) d.error(v.mark, path, "expected an integer, found " + v.describe());
  if (n) out = *n;
  return n.has_value();
}

bool parse(const Node& v, const std::string& path, Diagnostics& d, double& out) {
  std::optional<double> x;
  if (v.is_scalar() && !v.quoted) x = config::parse_double(v.text);
  if (!x) d.error(v.mark, path, "expected a number, found " + v.describe());
  if (x) out = *x;
  return x.has_value();
}

bool parse(const Node& v, const std::string& path, Diagnostics& d, bool& out) {
  const bool ok = v.is_scalar() && !v.quoted && (v.text == "true" || v.text == "false");
  if (!ok) d.error(v.mark, path, "expected true or false, found " + v.describe());
  if (ok) out = v.text == "true";
  return ok;
}

bool parse(const Node& v, const std::string& path, Diagnostics& d, std::string& out) {
  const bool ok = v.is_scalar() && v.quoted;
  if (!ok) d.error(v.mark, path, "expected a string, found " + v.describe());
  if (ok) out = v.text;
  return ok;
}

Key size(std::string key, int64_t Architecture::*member, std::string note,
         std::optional<int64_t> if_null) {
  const std::string name = key;
  return {std::move(key), count(member, if_null),
          [name, member](const Architecture& a, nlohmann::json& out) { out[name] = a.*member; },
          std::move(note)};
}

Read<Architecture> keep(const Node* Architecture::*member) {
  return [member](const Node& v, const std::string&, Architecture& a, Diagnostics&) {
    a.*member = v.is_null() ? nullptr : &v;
  };
}

Key only_key(std::string key, const std::string& expected, const std::string& why) {
  return {std::move(key), only<Architecture>(expected, why), nullptr, "must be " + expected};
}

Read<Architecture> refuse(const std::string& why) {
  return [why](const Node& v, const std::string& path, Architecture&, Diagnostics& d) {
    if (!v.is_null() && !(v.is_mapping() && v.entries.empty())) d.error(v.mark, path, why);
  };
}

Keys irrelevant(std::initializer_list<const char*> keys, const std::string& why) {
  Keys out;
  for (const char* k : keys) out.push_back({k, nullptr, nullptr, why});
  return out;
}

Keys join_keys(std::initializer_list<Keys> parts) {
  Keys out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Keys without(Keys keys, std::initializer_list<const char*> names) {
  std::erase_if(keys, [&](const Key& k) {
    return std::find(names.begin(), names.end(), k.key) != names.end();
  });
  return keys;
}

void write_keys(const Keys& keys, const Architecture& a, nlohmann::json& out) {
  for (const auto& k : keys)
    if (k.write) k.write(a, out);
}

// gelu_new, gelu_fast, gelu_accurate and gelu_pytorch_tanh all compute
// 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))).
const std::map<std::string, std::string>& activations() {
  static const std::map<std::string, std::string> table = {
      {"silu", "silu"},           {"swish", "silu"},
      {"gelu", "gelu"},           {"gelu_python", "gelu"},
      {"gelu_new", "gelu_tanh"},  {"gelu_pytorch_tanh", "gelu_tanh"},
      {"gelu_fast", "gelu_tanh"}, {"gelu_accurate", "gelu_tanh"},
      {"relu", "relu"},           {"relu2", "squared_relu"},
      {"linear", "identity"},     {"quick_gelu", "quick_gelu"},
  };
  return table;
}

std::string hf_activation(const std::string& blocks_name, const std::string& tanh_name) {
  static const std::map<std::string, std::string> names = {{"silu", "silu"},
                                                           {"gelu", "gelu"},
                                                           {"relu", "relu"},
                                                           {"quick_gelu", "quick_gelu"},
                                                           {"squared_relu", "relu2"},
                                                           {"identity", "linear"}};
  if (blocks_name == "gelu_tanh") return tanh_name;
  const auto found = names.find(blocks_name);
  return found == names.end() ? "" : found->second;
}

namespace {

void activation(const Node& v, const std::string& path, Architecture& a, Diagnostics& d) {
  std::string name;
  if (!parse(v, path, d, name)) return;
  const auto found = activations().find(name);
  if (found != activations().end()) {
    a.activation = found->second;
    return;
  }
  std::vector<std::string> known;
  for (const auto& [k, _] : activations()) known.push_back(k);
  d.error(v.mark, path,
          "activation '" + name + "' has no blocks equivalent (supported: " + config::join(known) +
              ")");
}

// The class names a head: blocks builds a causal LM head, so the checkpoint must have one.
void causal_lm_classes(const Node& v, const std::string& path, Architecture&, Diagnostics& d) {
  if (v.is_null()) return;
  if (!v.is_sequence()) {
    d.error(v.mark, path, "expected a list of class names, found " + v.describe());
    return;
  }
  for (const auto& item : v.items) {
    std::string name;
    if (!parse(item, path, d, name)) continue;
    if (!name.ends_with("ForCausalLM") && !name.ends_with("LMHeadModel"))
      d.error(item.mark, path,
              "'" + name +
                  "' is not a causal language model (...ForCausalLM, GPT2LMHeadModel); "
                  "blocks would give it an LM head it does not have");
  }
}

void rope_type(const Node& v, const std::string& path, RopeKeys& rope, Diagnostics& d) {
  // transformers reads rope_type first and falls back to the legacy `type`.
  const bool legacy = path.ends_with(".type");
  if (legacy && !rope.type_key.empty()) return;
  if (parse(v, path, d, rope.type)) rope.type_key = path;
}

}  // namespace

Key activation_key(std::string key, std::string note, std::string tanh_name) {
  const std::string name = key;
  return {std::move(key), activation,
          [name, tanh_name](const Architecture& a, nlohmann::json& out) {
            out[name] = hf_activation(a.activation, tanh_name);
          },
          std::move(note)};
}

// `architectures` and `model_type` are written by the export from the family itself;
// `torch_dtype` and `initializer_range` when known.
Keys common_keys() {
  return join_keys({
      {{"model_type", nullptr, nullptr, "picks the family (read first)"},
       {"architectures", causal_lm_classes, nullptr, "the transformers class: must be a causal LM"},
       only_key("is_encoder_decoder", "false", "encoder-decoder models are not supported"),
       only_key("add_cross_attention", "false", "cross-attention to an encoder is not supported"),
       {"pruned_heads", refuse("pruned attention heads change the shapes; not supported"), nullptr,
        "must be empty"},
       {"quantization_config",
        refuse("quantized checkpoints are not supported: import the unquantized model's config"),
        nullptr, "must be absent"},
       {"torch_dtype", nullptr,
        [](const Architecture& a, nlohmann::json& out) {
          if (!a.torch_dtype.empty()) out["torch_dtype"] = a.torch_dtype;
        },
        "storage precision of the weights, chosen when loading"},
       {"initializer_range", to(&Architecture::init_std),
        [](const Architecture& a, nlohmann::json& out) {
          if (a.init_std) out["initializer_range"] = *a.init_std;
        },
        "init_std"}},
      irrelevant({"_name_or_path", "_commit_hash", "_from_model_config", "transformers_version"},
                 "provenance of the file"),
      irrelevant({"dtype"}, "storage precision of the weights, chosen when loading"),
      irrelevant({"bos_token_id", "eos_token_id", "sep_token_id", "decoder_start_token_id",
                  "tokenizer_class", "prefix"},
                 "tokenizer and generation settings"),
      irrelevant({"pad_token_id"},
                 "a token id; as nn.Embedding's padding_idx it only zeroes that row's gradient, "
                 "the forward is the same"),
      irrelevant({"use_cache", "output_attentions", "output_hidden_states", "return_dict",
                  "torchscript", "use_bfloat16", "tf_legacy_loss"},
                 "what transformers' forward returns or how it runs"),
      irrelevant({"attn_implementation", "_attn_implementation"},
                 "the attention kernel (eager, sdpa, flash): the same function"),
      irrelevant({"chunk_size_feed_forward"}, "computes the MLP in chunks: the same result"),
      irrelevant({"is_decoder", "tie_encoder_decoder"},
                 "unused by decoder-only classes, which are always causal"),
      irrelevant({"id2label", "label2id", "num_labels", "problem_type", "finetuning_task",
                  "task_specific_params"},
                 "labels and presets of task heads a causal LM does not have"),
      irrelevant({"auto_map"}, "where the Hub's remote code lives; the classes are transformers'"),
      // clang-format off
      irrelevant(
          {"max_length", "min_length", "do_sample", "early_stopping", "num_beams",
           "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
           "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
           "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences",
           "output_scores", "return_dict_in_generate", "forced_bos_token_id",
           "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
           "suppress_tokens", "begin_suppress_tokens"},
          "generation defaults"),
      // clang-format on
  });
}

const std::vector<BasicKey<RopeKeys>>& rope_keys() {
  using R = RopeKeys;
  static const std::vector<BasicKey<R>> keys = {
      {"rope_type", rope_type, nullptr, "rotary.type: default, llama3 or yarn"},
      {"type", rope_type, nullptr, "legacy name of rope_type"},
      {"rope_theta", to(&R::theta), nullptr, "rotary.theta"},
      {"factor", to(&R::factor), nullptr, "llama3 and yarn scale_factor"},
      {"low_freq_factor", to(&R::low_freq_factor), nullptr, "llama3 low_frequency_factor"},
      {"high_freq_factor", to(&R::high_freq_factor), nullptr, "llama3 high_frequency_factor"},
      {"original_max_position_embeddings", count(&R::original_context), nullptr,
       "llama3 and yarn original_context_length"},
      {"beta_fast", to(&R::beta_fast), nullptr, "yarn beta_fast"},
      {"beta_slow", to(&R::beta_slow), nullptr, "yarn beta_slow"},
      {"attention_factor", to(&R::attention_factor), nullptr, "yarn attention_factor"},
      {"truncate", to(&R::truncate), nullptr, "yarn truncate"},
  };
  return keys;
}

nlohmann::json rope_scaling_json(const Rotary& rope) {
  if (rope.type == "llama3")
    return {{"rope_type", "llama3"},
            {"factor", rope.factor},
            {"low_freq_factor", rope.low_freq_factor},
            {"high_freq_factor", rope.high_freq_factor},
            {"original_max_position_embeddings", rope.original_context}};
  if (rope.type == "yarn") {
    nlohmann::json j = {{"rope_type", "yarn"},
                        {"factor", rope.factor},
                        {"original_max_position_embeddings", rope.original_context},
                        {"beta_fast", rope.beta_fast},
                        {"beta_slow", rope.beta_slow}};
    if (rope.attention_factor) j["attention_factor"] = *rope.attention_factor;
    if (!rope.truncate) j["truncate"] = false;  // transformers' default: true
    return j;
  }
  return nullptr;
}

}  // namespace blocks::hf
