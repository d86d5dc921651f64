// Hugging Face config.json -> blocks document. A family is data: its transformers class defaults
// and one table saying what each key becomes, or why it does not matter to the architecture.
// Semantics follow transformers' configuration_{llama,mistral,mixtral,qwen2,gpt2}.py and their
// modeling files (which linears have biases, which layers slide, rope types, activations).
#include "framework/hf/config.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>

#include "framework/config/codec.h"
#include "framework/config/emit.h"
#include "framework/config/load.h"

namespace blocks::hf {

namespace {

using config::Diagnostics;
using config::Json;
using config::Node;

// What a config.json describes, family-independent. Each family starts from its transformers
// class defaults: an absent key means the default, as in from_pretrained.
struct Architecture {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // 0: 4 * hidden_size (GPT-2's n_inner null)
  int64_t num_layers = 0;
  int64_t heads = 0;
  int64_t head_groups = 0;          // 0: heads (num_key_value_heads null)
  int64_t head_size = 0;            // 0: hidden_size / heads (head_dim null)
  std::string activation = "silu";  // already a blocks activation name
  std::string mlp = "gated";        // gated (Llama-style), mlp (GPT-2) or moe (Mixtral)
  std::string normalization = "rms_norm";
  double norm_epsilon = 1e-6;
  int64_t learned_positions = 0;  // GPT-2's position table; 0: none
  bool rotary = true;
  double rope_theta = 10000.0;
  const Node* rope_scaling = nullptr;  // transformers < 5 name of rope_parameters
  const Node* rope_parameters = nullptr;
  bool query_bias = false, key_bias = false, value_bias = false, output_bias = false;
  bool mlp_bias = false;
  // Qwen2 decides windows per layer: layer i uses sliding_window when use_sliding_window and
  // layer_types[i] is sliding_attention (without layer_types: i >= max_window_layers).
  // Mistral and Mixtral are the case max_window_layers 0: every layer.
  int64_t sliding_window = 0;  // 0: none
  bool use_sliding_window = true;
  int64_t max_window_layers = 0;
  const Node* layer_types = nullptr;
  double attention_dropout = 0.0, embedding_dropout = 0.0, residual_dropout = 0.0;
  bool scale_attention = true;  // false: logits are not divided by sqrt(head_size)
  int64_t experts = 0;          // > 0: a Mixtral MoE
  int64_t top_k = 2;
  double aux_loss_coefficient = 0.0, jitter = 0.0;
  bool tied = false;
  double init_std = 0.02;
};

// Rotary parameters: rope_parameters (transformers 5) or rope_scaling (before).
struct Rope {
  std::string type = "default";
  std::string type_key;  // rope_type, or its legacy name type
  std::optional<double> theta, factor, low_freq_factor, high_freq_factor;
  int64_t original_context = 0;  // 0: not given
};

// ---- values: each checks its type and reports at the value's mark ----

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

template <class T>
bool parse(const Node& v, const std::string& path, Diagnostics& d, std::optional<T>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  T value{};
  if (!parse(v, path, d, value)) return false;
  out = value;
  return true;
}

// ---- key tables ----

// What one key does to a Target (Architecture, Rope): `apply` null means irrelevant.
template <class Target>
using Apply =
    std::function<void(const Node& value, const std::string& path, Target&, Diagnostics&)>;

template <class Target>
struct Rule {
  std::string key;
  Apply<Target> apply;  // null: irrelevant to the architecture
  std::string note;     // what the key becomes, or why it is irrelevant
};

template <class Target>
using Rules = std::vector<Rule<Target>>;

template <class Target, class T>
Apply<Target> to(T Target::*member) {
  return [member](const Node& v, const std::string& path, Target& t, Diagnostics& d) {
    parse(v, path, d, t.*member);
  };
}

// A size (>= 1). `if_null` allows null and stores that value for it.
template <class Target>
Apply<Target> count(int64_t Target::*member, std::optional<int64_t> if_null = std::nullopt) {
  return [member, if_null](const Node& v, const std::string& path, Target& t, Diagnostics& d) {
    if (v.is_null() && if_null) {
      t.*member = *if_null;
      return;
    }
    int64_t n = 0;
    if (!parse(v, path, d, n)) return;
    if (n < 1) d.error(v.mark, path, "must be >= 1, found " + std::to_string(n));
    if (n >= 1) t.*member = n;
  };
}

// Keeps the node for a step that needs other keys first (rope, layer_types).
template <class Target>
Apply<Target> keep(const Node* Target::*member) {
  return [member](const Node& v, const std::string&, Target& t, Diagnostics&) {
    t.*member = v.is_null() ? nullptr : &v;
  };
}

// A switch blocks supports in one position only: null or `expected`, else `why` is the error.
template <class Target>
Apply<Target> only(const std::string& expected, const std::string& why) {
  return [expected, why](const Node& v, const std::string& path, Target&, Diagnostics& d) {
    if (v.is_null() || (v.is_scalar() && !v.quoted && v.text == expected)) return;
    d.error(v.mark, path, why + " (found " + v.describe() + "; only " + expected + " converts)");
  };
}

// A key whose presence alone means an unsupported model.
template <class Target>
Apply<Target> refuse(const std::string& why) {
  return [why](const Node& v, const std::string& path, Target&, Diagnostics& d) {
    if (!v.is_null() && !(v.is_mapping() && v.entries.empty())) d.error(v.mark, path, why);
  };
}

// Irrelevant keys sharing one reason.
template <class Target>
Rules<Target> irrelevant(std::initializer_list<const char*> keys, const std::string& why) {
  Rules<Target> rules;
  for (const char* k : keys) rules.push_back({k, nullptr, why});
  return rules;
}

template <class Target>
Rules<Target> join_rules(std::initializer_list<Rules<Target>> parts) {
  Rules<Target> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Applies `rules` to every entry of `mapping`; a key without a rule is an error, never dropped.
template <class Target>
void apply_rules(const Node& mapping, const std::string& prefix, const Rules<Target>& rules,
                 const std::string& unknown, Target& target, Diagnostics& d) {
  std::vector<std::string> names;
  for (const auto& r : rules) names.push_back(r.key);
  for (const auto& e : mapping.entries) {
    auto rule =
        std::find_if(rules.begin(), rules.end(), [&](const auto& r) { return r.key == e.key; });
    if (rule == rules.end()) {
      std::string message = unknown;
      if (auto guess = config::did_you_mean(e.key, names))
        message += "; did you mean '" + *guess + "'?";
      d.error(e.key_mark, prefix + e.key, message);
    } else if (rule->apply) {
      rule->apply(e.value, prefix + e.key, target, d);
    }
  }
}

// ---- rules shared by the families ----

using ArchRules = Rules<Architecture>;

// transformers' ACT2FN names -> blocks activations. gelu_new, gelu_fast, gelu_accurate and
// gelu_pytorch_tanh all compute 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))).
const std::map<std::string, std::string>& activations() {
  static const std::map<std::string, std::string> table = {
      {"silu", "silu"},           {"swish", "silu"},
      {"gelu", "gelu"},           {"gelu_python", "gelu"},
      {"gelu_new", "gelu_tanh"},  {"gelu_pytorch_tanh", "gelu_tanh"},
      {"gelu_fast", "gelu_tanh"}, {"gelu_accurate", "gelu_tanh"},
      {"relu", "relu"},           {"relu2", "squared_relu"},
      {"linear", "identity"},
  };
  return table;
}

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

// Llama's attention_bias puts a bias on all four projections, o_proj included.
void attention_bias(const Node& v, const std::string& path, Architecture& a, Diagnostics& d) {
  bool bias = false;
  if (parse(v, path, d, bias)) a.query_bias = a.key_bias = a.value_bias = a.output_bias = bias;
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

// Keys any PretrainedConfig may carry.
ArchRules common_rules() {
  return join_rules<Architecture>({
      {{"model_type", nullptr, "picks the family (read first)"},
       {"architectures", causal_lm_classes, "the transformers class: must be a causal LM"},
       {"is_encoder_decoder",
        only<Architecture>("false", "encoder-decoder models are not supported"), "must be false"},
       {"add_cross_attention",
        only<Architecture>("false", "cross-attention to an encoder is not supported"),
        "must be false"},
       {"pruned_heads",
        refuse<Architecture>("pruned attention heads change the shapes; not supported"),
        "must be empty"},
       {"quantization_config",
        refuse<Architecture>("quantized checkpoints are not supported: import the unquantized "
                             "model's config"),
        "must be absent"}},
      irrelevant<Architecture>(
          {"_name_or_path", "_commit_hash", "_from_model_config", "transformers_version"},
          "provenance of the file"),
      irrelevant<Architecture>({"torch_dtype", "dtype"},
                               "storage precision of the weights, chosen when loading"),
      irrelevant<Architecture>({"bos_token_id", "eos_token_id", "sep_token_id",
                                "decoder_start_token_id", "tokenizer_class", "prefix"},
                               "tokenizer and generation settings"),
      irrelevant<Architecture>({"pad_token_id"},
                               "a token id; as nn.Embedding's padding_idx it only zeroes that "
                               "row's gradient, the forward is the same"),
      irrelevant<Architecture>({"use_cache", "output_attentions", "output_hidden_states",
                                "return_dict", "torchscript", "use_bfloat16", "tf_legacy_loss"},
                               "what transformers' forward returns or how it runs"),
      irrelevant<Architecture>({"attn_implementation", "_attn_implementation"},
                               "the attention kernel (eager, sdpa, flash): the same function"),
      irrelevant<Architecture>({"chunk_size_feed_forward"},
                               "computes the MLP in chunks: the same result"),
      irrelevant<Architecture>({"is_decoder", "tie_encoder_decoder"},
                               "unused by decoder-only classes, which are always causal"),
      irrelevant<Architecture>({"id2label", "label2id", "num_labels", "problem_type",
                                "finetuning_task", "task_specific_params"},
                               "labels and presets of task heads a causal LM does not have"),
      // clang-format off
      irrelevant<Architecture>(
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

// Llama, Mistral, Mixtral and Qwen2: the same block with rotary positions and RMSNorm.
ArchRules rotary_rules() {
  using A = Architecture;
  return join_rules<A>({
      {{"vocab_size", count(&A::vocab_size), "embeddings.vocab_size"},
       {"hidden_size", count(&A::hidden_size), "hidden_size"},
       {"intermediate_size", count(&A::intermediate_size), "mlp.intermediate_size"},
       {"num_hidden_layers", count(&A::num_layers), "decoder.num_layers"},
       {"num_attention_heads", count(&A::heads), "mixer.heads"},
       {"num_key_value_heads", count(&A::head_groups, 0), "mixer.head_groups; null: heads"},
       {"head_dim", count(&A::head_size, 0), "mixer.head_size; null: hidden_size / heads"},
       {"hidden_act", activation, "mlp.activation (gated)"},
       {"rms_norm_eps", to(&A::norm_epsilon), "normalization.epsilon"},
       {"rope_theta", to(&A::rope_theta), "rotary.theta"},
       {"rope_scaling", keep(&A::rope_scaling), "rotary: null, default or llama3"},
       {"rope_parameters", keep(&A::rope_parameters), "rotary: default or llama3"},
       {"attention_dropout", to(&A::attention_dropout), "mixer.dropout"},
       {"tie_word_embeddings", to(&A::tied), "head.tied"},
       {"initializer_range", to(&A::init_std), "init_std"}},
      irrelevant<A>({"max_position_embeddings"},
                    "rotary positions have no table: the trained context length sizes nothing"),
  });
}

ArchRules sliding_window_rules() {
  using A = Architecture;
  return {{"sliding_window", count(&A::sliding_window, 0), "mixer.window_size; null: none"}};
}

ArchRules llama_rules() {
  using A = Architecture;
  return join_rules<A>({
      common_rules(),
      rotary_rules(),
      {{"attention_bias", attention_bias, "query, key, value and output bias"},
       {"mlp_bias", to(&A::mlp_bias), "gate, up and down bias"},
       {"pretraining_tp", nullptr,
        "Meta's tensor-parallel slicing of the linears: the same products"}},
  });
}

ArchRules mistral_rules() {
  return join_rules<Architecture>({common_rules(), rotary_rules(), sliding_window_rules()});
}

ArchRules mixtral_rules() {
  using A = Architecture;
  return join_rules<A>({
      common_rules(),
      rotary_rules(),
      sliding_window_rules(),
      {{"num_local_experts", count(&A::experts), "mlp.experts"},
       {"num_experts_per_tok", count(&A::top_k), "mlp.top_k"},
       {"router_aux_loss_coef", to(&A::aux_loss_coefficient), "mlp.aux_loss_coefficient"},
       {"router_jitter_noise", to(&A::jitter), "mlp.jitter"},
       {"output_router_logits", nullptr,
        "whether forward returns router logits; the loss weight is router_aux_loss_coef"}},
  });
}

ArchRules qwen2_rules() {
  using A = Architecture;
  return join_rules<A>({
      common_rules(),
      rotary_rules(),
      sliding_window_rules(),
      {{"use_sliding_window", to(&A::use_sliding_window), "whether sliding_window applies"},
       {"max_window_layers", to(&A::max_window_layers), "layers from this index slide"},
       {"layer_types", keep(&A::layer_types), "per-layer window overrides"},
       {"use_mrope",
        only<A>("false", "multimodal rotary positions (Qwen2-VL's mrope) are not supported"),
        "must be false"}},
  });
}

ArchRules gpt2_rules() {
  using A = Architecture;
  return join_rules<A>({
      common_rules(),
      {{"vocab_size", count(&A::vocab_size), "embeddings.vocab_size"},
       {"n_positions", count(&A::learned_positions), "embeddings.max_positions"},
       {"n_embd", count(&A::hidden_size), "hidden_size"},
       {"n_layer", count(&A::num_layers), "decoder.num_layers"},
       {"n_head", count(&A::heads), "mixer.heads"},
       {"n_inner", count(&A::intermediate_size, 0), "mlp.intermediate_size; null: 4 * n_embd"},
       {"activation_function", activation, "mlp.activation"},
       {"resid_pdrop", to(&A::residual_dropout), "block dropout"},
       {"embd_pdrop", to(&A::embedding_dropout), "embeddings.dropout"},
       {"attn_pdrop", to(&A::attention_dropout), "mixer.dropout"},
       {"layer_norm_epsilon", to(&A::norm_epsilon), "normalization.epsilon"},
       {"initializer_range", to(&A::init_std), "init_std"},
       {"scale_attn_weights", to(&A::scale_attention), "false: mixer.softmax_scale 1.0"},
       {"scale_attn_by_inverse_layer_idx",
        only<A>("false", "scaling attention by 1 / (layer + 1) is not supported"), "must be false"},
       {"tie_word_embeddings", to(&A::tied), "head.tied"}},
      irrelevant<A>({"reorder_and_upcast_attn"},
                    "computes the same attention in float32 with keys pre-scaled: precision only"),
      irrelevant<A>({"n_ctx"}, "legacy duplicate of n_positions; transformers no longer reads it"),
      irrelevant<A>({"summary_type", "summary_use_proj", "summary_activation",
                     "summary_proj_to_labels", "summary_first_dropout"},
                    "GPT2DoubleHeadsModel's classification head, not part of the LM"),
  });
}

// ---- families: transformers' class defaults and key tables ----

struct Family {
  std::string model_type;
  Architecture defaults;
  ArchRules rules;
};

Architecture llama_defaults() {  // LlamaConfig
  Architecture a;
  a.vocab_size = 32000;
  a.hidden_size = 4096;
  a.intermediate_size = 11008;
  a.num_layers = 32;
  a.heads = 32;
  a.norm_epsilon = 1e-6;
  a.rope_theta = 10000.0;
  return a;
}

Architecture mistral_defaults() {  // MistralConfig
  Architecture a;
  a.vocab_size = 32000;
  a.hidden_size = 4096;
  a.intermediate_size = 14336;
  a.num_layers = 32;
  a.heads = 32;
  a.head_groups = 8;
  a.norm_epsilon = 1e-6;
  a.rope_theta = 10000.0;
  a.sliding_window = 4096;
  return a;
}

Architecture mixtral_defaults() {  // MixtralConfig
  Architecture a = mistral_defaults();
  a.norm_epsilon = 1e-5;
  a.rope_theta = 1000000.0;
  a.sliding_window = 0;
  a.mlp = "moe";
  a.experts = 8;
  a.top_k = 2;
  a.aux_loss_coefficient = 0.001;
  return a;
}

Architecture qwen2_defaults() {  // Qwen2Config; q, k and v always have biases, o none
  Architecture a;
  a.vocab_size = 151936;
  a.hidden_size = 4096;
  a.intermediate_size = 22016;
  a.num_layers = 32;
  a.heads = 32;
  a.head_groups = 32;
  a.norm_epsilon = 1e-6;
  a.rope_theta = 10000.0;
  a.sliding_window = 4096;
  a.use_sliding_window = false;
  a.max_window_layers = 28;
  a.query_bias = a.key_bias = a.value_bias = true;
  return a;
}

Architecture gpt2_defaults() {  // GPT2Config; every linear has a bias; the head is tied
  Architecture a;
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
  return a;
}

const std::vector<Family>& families() {
  static const std::vector<Family> all = {
      {"gpt2", gpt2_defaults(), gpt2_rules()},
      {"llama", llama_defaults(), llama_rules()},
      {"mistral", mistral_defaults(), mistral_rules()},
      {"mixtral", mixtral_defaults(), mixtral_rules()},
      {"qwen2", qwen2_defaults(), qwen2_rules()},
  };
  return all;
}

const Family* find_family(const Node& hf, Diagnostics& d) {
  const std::string supported = config::join(supported_model_types());
  const Node* type = hf.find("model_type");
  if (!type) {
    d.error(hf.mark, "hf.model_type", "missing; supported: " + supported);
    return nullptr;
  }
  std::string name;
  if (!parse(*type, "hf.model_type", d, name)) return nullptr;
  for (const auto& f : families())
    if (f.model_type == name) return &f;
  d.error(type->mark, "hf.model_type",
          "unsupported model_type '" + name + "' (supported: " + supported + ")");
  return nullptr;
}

// ---- rotary ----

void rope_type(const Node& v, const std::string& path, Rope& rope, Diagnostics& d) {
  // transformers reads rope_type first and falls back to the legacy `type`.
  const bool legacy = path.ends_with(".type");
  if (legacy && !rope.type_key.empty()) return;
  if (parse(v, path, d, rope.type)) rope.type_key = path;
}

const Rules<Rope>& rope_rules() {
  static const Rules<Rope> rules = {
      {"rope_type", rope_type, "rotary.type: default or llama3"},
      {"type", rope_type, "legacy name of rope_type"},
      {"rope_theta", to(&Rope::theta), "rotary.theta"},
      {"factor", to(&Rope::factor), "llama3 scale_factor"},
      {"low_freq_factor", to(&Rope::low_freq_factor), "llama3 low_frequency_factor"},
      {"high_freq_factor", to(&Rope::high_freq_factor), "llama3 high_frequency_factor"},
      {"original_max_position_embeddings", count(&Rope::original_context),
       "llama3 original_context_length"},
  };
  return rules;
}

// Llama 3.1's scaling needs all four of its parameters (transformers refuses it otherwise).
std::optional<Json> llama3_rotary(const Rope& rope, double theta, const Node& node,
                                  const std::string& path, Diagnostics& d) {
  const std::pair<const char*, bool> needed[] = {
      {"factor", rope.factor.has_value()},
      {"low_freq_factor", rope.low_freq_factor.has_value()},
      {"high_freq_factor", rope.high_freq_factor.has_value()},
      {"original_max_position_embeddings", rope.original_context > 0}};
  bool complete = true;
  for (const auto& [key, given] : needed) {
    if (!given) d.error(node.mark, path, std::string("rope type llama3 needs '") + key + "'");
    complete = complete && given;
  }
  if (!complete) return std::nullopt;
  Json j = Json::object();
  j["type"] = "llama3";
  j["theta"] = theta;
  j["scale_factor"] = *rope.factor;
  j["low_frequency_factor"] = *rope.low_freq_factor;
  j["high_frequency_factor"] = *rope.high_freq_factor;
  j["original_context_length"] = rope.original_context;
  return j;
}

// Plain rotary ignores scaling parameters in transformers; here they are errors, since a
// config that sets them most likely meant another type.
std::optional<Json> default_rotary(double theta, const Node& node, const std::string& path,
                                   Diagnostics& d) {
  bool clean = true;
  for (const char* key :
       {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
    if (const Node::Entry* e = node.find_entry(key)) {
      d.error(e->key_mark, path + "." + key, "has no meaning for rope type default");
      clean = false;
    }
  }
  if (!clean) return std::nullopt;
  Json j = Json::object();
  j["type"] = "default";
  j["theta"] = theta;
  return j;
}

// The `rotary` of the mixer, or null (GPT-2) / nullopt on errors.
std::optional<Json> rotary_json(const Architecture& a, Diagnostics& d) {
  if (!a.rotary) return Json(nullptr);
  if (a.rope_parameters && a.rope_scaling) {
    d.error(a.rope_scaling->mark, "hf.rope_scaling",
            "give rope_parameters or its legacy name rope_scaling, not both");
    return std::nullopt;
  }
  const Node* node = a.rope_parameters ? a.rope_parameters : a.rope_scaling;
  const std::string path = a.rope_parameters ? "hf.rope_parameters" : "hf.rope_scaling";
  Rope rope;
  if (node && !node->is_mapping()) {
    d.error(node->mark, path, "expected a mapping or null, found " + node->describe());
    return std::nullopt;
  }
  if (node)
    apply_rules(*node, path + ".", rope_rules(),
                "not a rope parameter blocks converts (its rotary types are default and llama3)",
                rope, d);
  const double theta = rope.theta.value_or(a.rope_theta);
  static const Node empty = Node::mapping();
  if (rope.type == "default") return default_rotary(theta, node ? *node : empty, path, d);
  if (rope.type == "llama3") return llama3_rotary(rope, theta, *node, path, d);
  d.error(node->find(rope.type_key.substr(path.size() + 1))->mark, rope.type_key,
          "rope type '" + rope.type +
              "' is not supported (blocks has default and llama3); plain rotary would change "
              "the model");
  return std::nullopt;
}

// ---- sliding windows ----

// The window of each layer (0: none), following Qwen2Config's layer_types rule.
std::optional<std::vector<int64_t>> layer_windows(const Architecture& a, Diagnostics& d) {
  const int64_t window = a.use_sliding_window ? a.sliding_window : 0;
  std::vector<int64_t> windows(static_cast<size_t>(a.num_layers), 0);
  if (!a.layer_types) {
    for (int64_t i = std::max<int64_t>(0, a.max_window_layers); i < a.num_layers; ++i)
      windows[i] = window;
    return windows;
  }
  const Node& types = *a.layer_types;
  if (!types.is_sequence() || static_cast<int64_t>(types.items.size()) != a.num_layers) {
    d.error(types.mark, "hf.layer_types",
            "expected a list of " + std::to_string(a.num_layers) +
                " layer types (one per hidden layer), found " +
                (types.is_sequence() ? std::to_string(types.items.size()) + " items"
                                     : types.describe()));
    return std::nullopt;
  }
  bool ok = true;
  for (size_t i = 0; i < windows.size(); ++i) {
    std::string type;
    if (!parse(types.items[i], "hf.layer_types", d, type)) {
      ok = false;
    } else if (type != "full_attention" && type != "sliding_attention") {
      d.error(types.items[i].mark, "hf.layer_types",
              "unknown layer type '" + type + "' (expected full_attention or sliding_attention)");
      ok = false;
    }
    if (type == "sliding_attention") windows[i] = window;
  }
  if (!ok) return std::nullopt;
  return windows;
}

// ---- the blocks document ----

bool all_biases(const Architecture& a) {
  return a.query_bias && a.key_bias && a.value_bias && a.output_bias && a.mlp_bias;
}

// Per-linear `bias: true` where the model-level add_linear_biases (false) does not cover it.
void add_bias(Json& owner, const char* linear, bool bias, const Architecture& a) {
  if (bias && !all_biases(a)) owner[linear] = Json{{"bias", true}};
}

Json mixer_json(const Architecture& a, const Json& rotary, int64_t window) {
  Json m = Json::object();
  m["type"] = "attention";
  m["heads"] = a.heads;
  if (a.rotary) {  // Llama-style configs spell out GQA and head size, as the zoo does
    m["head_groups"] = a.head_groups ? a.head_groups : a.heads;
    m["head_size"] = a.head_size ? a.head_size : a.hidden_size / a.heads;
    m["rotary"] = rotary;
  }
  if (window) m["window_size"] = window;
  if (!a.scale_attention) m["softmax_scale"] = 1.0;
  if (a.attention_dropout > 0) m["dropout"] = a.attention_dropout;
  add_bias(m, "query", a.query_bias, a);
  add_bias(m, "key", a.key_bias, a);
  add_bias(m, "value", a.value_bias, a);
  add_bias(m, "output", a.output_bias, a);
  return m;
}

Json mlp_json(const Architecture& a) {
  Json m = Json::object();
  m["type"] = a.mlp;
  if (a.mlp == "moe") {
    m["experts"] = a.experts;
    m["top_k"] = a.top_k;
  }
  m["intermediate_size"] = a.intermediate_size ? a.intermediate_size : 4 * a.hidden_size;
  m["activation"] = a.activation;
  if (a.mlp == "moe") {  // Mixtral: SwiGLU experts, softmax renormalized over the top k
    m["gated"] = true;
    m["normalize_top_k"] = true;
    m["aux_loss_coefficient"] = a.aux_loss_coefficient;
    if (a.jitter > 0) m["jitter"] = a.jitter;
  }
  if (a.mlp == "gated") add_bias(m, "gate", a.mlp_bias, a);
  add_bias(m, "up", a.mlp_bias, a);
  add_bias(m, "down", a.mlp_bias, a);
  return m;
}

Json normalization_json(const Architecture& a) {
  return Json{{"type", a.normalization}, {"epsilon", a.norm_epsilon}};
}

// One repeated block; layers whose window differs from layer 0's get an override.
Json decoder_json(const Architecture& a, const Json& rotary, const std::vector<int64_t>& windows) {
  const int64_t first = windows.empty() ? 0 : windows[0];
  Json block = Json::object();
  block["type"] = "transformer";
  block["mixer"] = mixer_json(a, rotary, first);
  block["mlp"] = mlp_json(a);
  block["normalization"] = normalization_json(a);
  if (a.residual_dropout > 0) block["dropout"] = a.residual_dropout;
  Json decoder = Json::object();
  decoder["type"] = "repeat";
  decoder["num_layers"] = a.num_layers;
  decoder["block"] = block;
  Json overrides = Json::object();
  for (size_t i = 1; i < windows.size(); ++i) {
    if (windows[i] == first) continue;
    const Json w = windows[i] ? Json(windows[i]) : Json(nullptr);
    overrides[std::to_string(i)] = Json{{"mixer", Json{{"window_size", w}}}};
  }
  if (!overrides.empty()) decoder["overrides"] = overrides;
  return decoder;
}

Json document_json(const Architecture& a, const Json& rotary, const std::vector<int64_t>& windows) {
  Json embeddings = Json::object();
  embeddings["vocab_size"] = a.vocab_size;
  if (a.learned_positions) embeddings["max_positions"] = a.learned_positions;
  if (a.embedding_dropout > 0) embeddings["dropout"] = a.embedding_dropout;
  Json model = Json::object();
  model["type"] = "language_model";
  model["hidden_size"] = a.hidden_size;
  model["add_linear_biases"] = all_biases(a);
  model["init_std"] = a.init_std;
  model["embeddings"] = embeddings;
  model["decoder"] = decoder_json(a, rotary, windows);
  model["head"] = Json{{"normalization", normalization_json(a)}, {"tied", a.tied}};
  Json doc = Json::object();
  doc["version"] = 1;
  doc["model"] = model;
  return doc;
}

// transformers refuses hidden sizes that do not split into heads unless head_dim is given.
void check_heads(const Architecture& a, const Node& hf, Diagnostics& d) {
  if (a.head_size || a.heads < 1 || a.hidden_size % a.heads == 0) return;
  const Node* heads = hf.find(a.rotary ? "num_attention_heads" : "n_head");
  d.error(heads ? heads->mark : hf.mark, a.rotary ? "hf.num_attention_heads" : "hf.n_head",
          "hidden size " + std::to_string(a.hidden_size) + " is not a multiple of " +
              std::to_string(a.heads) + " heads" + (a.rotary ? " and head_dim is not set" : ""));
}

// Every step runs, so that one pass reports all the problems of a file.
std::optional<Json> convert(const Node& hf, Diagnostics& d) {
  if (!hf.is_mapping()) {
    d.error(hf.mark, "hf", "a config.json holds an object, found " + hf.describe());
    return std::nullopt;
  }
  const Family* family = find_family(hf, d);
  if (!family) return std::nullopt;
  Architecture a = family->defaults;
  apply_rules(hf, "hf.", family->rules,
              "not a known " + family->model_type +
                  " key; it may change the architecture, so it is not dropped",
              a, d);
  check_heads(a, hf, d);
  const auto rotary = rotary_json(a, d);
  const auto windows = layer_windows(a, d);
  if (!rotary || !windows) return std::nullopt;
  return document_json(a, *rotary, *windows);
}

}  // namespace

std::vector<std::string> supported_model_types() {
  std::vector<std::string> names;
  for (const auto& f : families()) names.push_back(f.model_type);
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<Json> import_config(const Node& hf, Diagnostics& diagnostics) {
  Diagnostics problems;
  auto doc = convert(hf, problems);
  diagnostics.append(problems);
  if (!problems.ok()) return std::nullopt;
  return doc;
}

std::optional<Json> import_file(const std::string& path, Diagnostics& diagnostics) {
  std::error_code ec;
  const bool folder = std::filesystem::is_directory(path, ec);
  // load_file reads .json as JSON and anything else as YAML, which also reads JSON.
  const auto hf = config::load_file(
      folder ? (std::filesystem::path(path) / "config.json").string() : path, diagnostics);
  if (!hf) return std::nullopt;
  return import_config(*hf, diagnostics);
}

std::optional<std::string> import_yaml(const std::string& path, Diagnostics& diagnostics) {
  const auto doc = import_file(path, diagnostics);
  if (!doc) return std::nullopt;
  return "# yaml-language-server: $schema=../schemas/blocks.schema.json\n"
         "# Imported by `blockc import hf` from " +
         path + "\n" + config::to_yaml(*doc);
}

}  // namespace blocks::hf
