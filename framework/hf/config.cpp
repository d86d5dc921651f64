// Hugging Face config.json -> blocks document, for every registered family (family.h). The
// family's key table reads config.json into the family-independent Architecture; the steps here
// (rotary, sliding windows, the document) know no family. Semantics follow transformers'
// configuration and modeling files of each family (cited in its file under families/).
#include "framework/hf/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "framework/config/codec.h"
#include "framework/config/emit.h"
#include "framework/config/load.h"
#include "framework/hf/family.h"
#include "framework/hf/llava.h"
#include "framework/hf/mllama.h"

namespace blocks::hf {

namespace {

using config::Diagnostics;
using config::Json;
using config::Node;

const Family* find_family(const Node& hf, Diagnostics& d) {
  const std::string supported = config::join(supported_model_types());
  const Node* type = hf.find("model_type");
  if (!type) {
    d.error(hf.mark, "hf.model_type", "missing; supported: " + supported);
    return nullptr;
  }
  std::string name;
  if (!parse(*type, "hf.model_type", d, name)) return nullptr;
  if (const Family* f = families().find(name)) return f;
  d.error(type->mark, "hf.model_type",
          "unsupported model_type '" + name + "' (supported: " + supported + ")");
  return nullptr;
}

// "a, b and c".
std::string words(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " and " : ", ") + items[i];
  return out;
}

// ---- rotary ----

// Parameters each rope type needs (transformers refuses the type without them).
bool require(const Node& node, const std::string& path, const std::string& type,
             std::initializer_list<std::pair<const char*, bool>> needed, Diagnostics& d) {
  bool complete = true;
  for (const auto& [key, given] : needed) {
    if (!given) d.error(node.mark, path, "rope type " + type + " needs '" + key + "'");
    complete = complete && given;
  }
  return complete;
}

// Fills a.rope from rope_parameters (transformers 5) or rope_scaling (before), over rope_theta.
// Plain rotary ignores scaling parameters in transformers; here they are errors, since a config
// that sets them most likely meant another type.
bool resolve_rotary(const Family& f, Architecture& a, Diagnostics& d) {
  if (!a.rotary) return true;
  if (a.rope_parameters && a.rope_scaling) {
    d.error(a.rope_scaling->mark, "hf.rope_scaling",
            "give rope_parameters or its legacy name rope_scaling, not both");
    return false;
  }
  const Node* node = a.rope_parameters ? a.rope_parameters : a.rope_scaling;
  const std::string path = a.rope_parameters ? "hf.rope_parameters" : "hf.rope_scaling";
  if (node && !node->is_mapping()) {
    d.error(node->mark, path, "expected a mapping or null, found " + node->describe());
    return false;
  }
  RopeKeys rope;
  if (node)
    apply_keys(
        *node, path + ".", rope_keys(),
        "not a rope parameter blocks converts (its rotary types are " + words(f.rope_types) + ")",
        rope, d);
  static const Node empty = Node::mapping();
  const Node& n = node ? *node : empty;
  Rotary& r = a.rope;
  r.type = rope.type;
  r.theta = rope.theta.value_or(r.theta);
  if (std::find(f.rope_types.begin(), f.rope_types.end(), rope.type) == f.rope_types.end()) {
    d.error(n.find(rope.type_key.substr(path.size() + 1))->mark, rope.type_key,
            "rope type '" + rope.type + "' is not supported (" + f.model_type + " converts " +
                words(f.rope_types) + "); plain rotary would change the model");
    return false;
  }
  if (rope.type == "default") {
    bool clean = true;
    for (const auto& key : rope_keys()) {
      if (key.key == "rope_type" || key.key == "type" || key.key == "rope_theta") continue;
      if (const Node::Entry* e = n.find_entry(key.key)) {
        d.error(e->key_mark, path + "." + key.key, "has no meaning for rope type default");
        clean = false;
      }
    }
    return clean;
  }
  if (rope.type == "llama3") {
    if (!require(n, path, "llama3",
                 {{"factor", rope.factor.has_value()},
                  {"low_freq_factor", rope.low_freq_factor.has_value()},
                  {"high_freq_factor", rope.high_freq_factor.has_value()},
                  {"original_max_position_embeddings", rope.original_context > 0}},
                 d))
      return false;
    r.factor = *rope.factor;
    r.low_freq_factor = *rope.low_freq_factor;
    r.high_freq_factor = *rope.high_freq_factor;
    r.original_context = rope.original_context;
    return true;
  }
  // yarn (_compute_yarn_parameters): beta_fast 32 and beta_slow 1 when absent; attention_factor
  // absent: 0.1 ln(factor) + 1.
  if (!require(n, path, "yarn",
               {{"factor", rope.factor.has_value()},
                {"original_max_position_embeddings", rope.original_context > 0}},
               d))
    return false;
  r.factor = *rope.factor;
  r.original_context = rope.original_context;
  r.beta_fast = rope.beta_fast.value_or(32.0);
  r.beta_slow = rope.beta_slow.value_or(1.0);
  r.attention_factor = rope.attention_factor;
  r.truncate = rope.truncate.value_or(true);
  return true;
}

Json rotary_json(const Architecture& a) {
  if (!a.rotary) return Json(nullptr);
  const Rotary& r = a.rope;
  Json j = Json::object();
  j["type"] = r.type;
  j["theta"] = r.theta;
  if (r.type == "llama3") {
    j["scale_factor"] = r.factor;
    j["low_frequency_factor"] = r.low_freq_factor;
    j["high_frequency_factor"] = r.high_freq_factor;
    j["original_context_length"] = r.original_context;
  } else if (r.type == "yarn") {
    j["scale_factor"] = r.factor;
    j["original_context_length"] = r.original_context;
    j["beta_fast"] = r.beta_fast;
    j["beta_slow"] = r.beta_slow;
    if (r.attention_factor) j["attention_factor"] = *r.attention_factor;
    if (!r.truncate) j["truncate"] = false;
  }
  return j;
}

// ---- sliding windows ----

// The window of each layer (0: none), following Qwen2Config's layer_types rule.
bool resolve_windows(Architecture& a, Diagnostics& d) {
  const int64_t window = a.use_sliding_window ? a.sliding_window : 0;
  a.windows.assign(static_cast<size_t>(a.num_layers), 0);
  if (!a.layer_types) {
    for (int64_t i = std::max<int64_t>(0, a.max_window_layers); i < a.num_layers; ++i)
      a.windows[i] = window;
    return true;
  }
  const Node& types = *a.layer_types;
  if (!types.is_sequence() || static_cast<int64_t>(types.items.size()) != a.num_layers) {
    d.error(types.mark, "hf.layer_types",
            "expected a list of " + std::to_string(a.num_layers) +
                " layer types (one per hidden layer), found " +
                (types.is_sequence() ? std::to_string(types.items.size()) + " items"
                                     : types.describe()));
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < a.windows.size(); ++i) {
    std::string type;
    if (!parse(types.items[i], "hf.layer_types", d, type)) {
      ok = false;
    } else if (type != "full_attention" && type != "sliding_attention") {
      d.error(types.items[i].mark, "hf.layer_types",
              "unknown layer type '" + type + "' (expected full_attention or sliding_attention)");
      ok = false;
    }
    if (type == "sliding_attention") a.windows[i] = window;
  }
  return ok;
}

// ---- the blocks document ----

bool all_biases(const Architecture& a) {
  return a.query_bias && a.key_bias && a.value_bias && a.output_bias && a.mlp_bias;
}

// Per-linear `bias: true` where the model-level add_linear_biases (false) does not cover it.
void add_bias(Json& owner, const char* linear, bool bias, const Architecture& a) {
  if (bias && !all_biases(a)) owner[linear] = Json{{"bias", true}};
}

Json mixer_json(const Architecture& a, int64_t window) {
  Json m = Json::object();
  m["type"] = "attention";
  m["heads"] = a.heads;
  if (a.rotary) {  // Llama-style configs spell out GQA and head size, as the zoo does
    m["head_groups"] = a.head_groups ? a.head_groups : a.heads;
    m["head_size"] = a.head_size ? a.head_size : a.hidden_size / a.heads;
    m["rotary"] = rotary_json(a);
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
  Json n = Json{{"type", a.normalization}, {"epsilon", a.norm_epsilon}};
  if (a.norm_weight_offset != 0.0) n["weight_offset"] = a.norm_weight_offset;
  return n;
}

// One repeated block; layers whose window differs from layer 0's get an override.
Json decoder_json(const Architecture& a) {
  const std::vector<int64_t>& windows = a.windows;
  const int64_t first = windows.empty() ? 0 : windows[0];
  Json block = Json::object();
  block["type"] = "transformer";
  block["mixer"] = mixer_json(a, first);
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

Json document_json(const Architecture& a) {
  Json embeddings = Json::object();
  embeddings["vocab_size"] = a.vocab_size;
  if (a.learned_positions) embeddings["max_positions"] = a.learned_positions;
  if (a.embedding_dropout > 0) embeddings["dropout"] = a.embedding_dropout;
  if (a.scale_embeddings) embeddings["scale"] = std::sqrt(static_cast<double>(a.hidden_size));
  Json model = Json::object();
  model["type"] = "language_model";
  model["hidden_size"] = a.hidden_size;
  model["add_linear_biases"] = all_biases(a);
  model["init_std"] = a.init_std.value_or(0.02);
  model["embeddings"] = embeddings;
  model["decoder"] = decoder_json(a);
  model["head"] = Json{{"normalization", normalization_json(a)}, {"tied", a.tied}};
  Json doc = Json::object();
  doc["version"] = 1;
  doc["model"] = model;
  return doc;
}

// transformers refuses hidden sizes that do not split into heads unless head_dim is given.
// The first of `keys` that `hf` has, for a message's place.
std::pair<const Node*, std::string> first_key(const Node& hf, std::initializer_list<const char*> keys) {
  for (const char* key : keys)
    if (const Node* n = hf.find(key)) return {n, key};
  return {nullptr, *keys.begin()};
}

// Values the keys accept one by one but no model can have: reported at their key, so that
// import never writes a config `blockc validate` refuses.
void check_values(const Architecture& a, const Node& hf, Diagnostics& d) {
  auto error = [&](std::initializer_list<const char*> keys, const std::string& message) {
    const auto [node, key] = first_key(hf, keys);
    d.error(node ? node->mark : hf.mark, "hf." + key, message);
  };
  if (a.head_groups < 0 || (a.heads >= 1 && a.head_groups > a.heads) ||
      (a.heads >= 1 && a.head_groups > 0 && a.heads % a.head_groups != 0))
    error({"num_key_value_heads"}, std::to_string(a.head_groups) +
                                       " key/value heads must divide the " +
                                       std::to_string(a.heads) + " attention heads");
  if (!(a.norm_epsilon > 0))
    error({"rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps"},
          "must be greater than 0, found " + config::format_number(a.norm_epsilon));
  const int64_t head_size = a.head_size ? a.head_size : a.heads > 0 ? a.hidden_size / a.heads : 0;
  if (a.rotary && head_size % 2 != 0)
    error({"head_dim", "num_attention_heads"},
          "rotary embeddings need an even head size, found " + std::to_string(head_size));
}

// The rotary values, once rope_scaling / rope_parameters are read.
void check_rope(const Architecture& a, const Node& hf, Diagnostics& d) {
  if (!a.rotary) return;
  if (!(a.rope.theta > 0)) {
    const auto [node, key] = first_key(hf, {"rope_theta", "rope_parameters"});
    d.error(node ? node->mark : hf.mark, "hf." + key,
            "the rotary base must be greater than 0, found " + config::format_number(a.rope.theta));
  }
  if (a.rope.type != "default" && !(a.rope.factor >= 1)) {
    const auto [node, key] = first_key(hf, {"rope_scaling", "rope_parameters"});
    d.error(node ? node->mark : hf.mark, "hf." + key + ".factor",
            "must be at least 1, found " + config::format_number(a.rope.factor));
  }
}

void check_heads(const Architecture& a, const Node& hf, Diagnostics& d) {
  if (a.head_size || a.heads < 1 || a.hidden_size % a.heads == 0) return;
  const Node* heads = hf.find(a.rotary ? "num_attention_heads" : "n_head");
  d.error(heads ? heads->mark : hf.mark, a.rotary ? "hf.num_attention_heads" : "hf.n_head",
          "hidden size " + std::to_string(a.hidden_size) + " is not a multiple of " +
              std::to_string(a.heads) + " heads" + (a.rotary ? " and head_dim is not set" : ""));
}

// What the family's classes cannot hold although its keys can say it.
void check_limits(const Family& f, const Architecture& a, const Node& hf, Diagnostics& d) {
  for (const auto& limit : f.limits) {
    if (limit.holds(a)) continue;
    const Node* at = hf.find(limit.key);
    d.error(at ? at->mark : hf.mark, "hf." + limit.key, limit.what(a) + ": " + limit.why);
  }
}

// Every step runs, so that one pass reports all the problems of a file.
std::optional<Json> convert(const Node& hf, Diagnostics& d,
                            std::vector<std::string>* defaults = nullptr) {
  if (!hf.is_mapping()) {
    d.error(hf.mark, "hf", "a config.json holds an object, found " + hf.describe());
    return std::nullopt;
  }
  // Composite models hold language models of the families below.
  if (const Node* type = hf.find("model_type"); type && type->is_scalar() && type->text == "llava")
    return convert_llava(
        hf, d, [](const Node& text, Diagnostics& dd) { return convert(text, dd); }, defaults);
  if (const Node* type = hf.find("model_type"); type && type->is_scalar() && type->text == "mllama")
    return convert_mllama(
        hf, d, [](const Node& text, Diagnostics& dd) { return convert(text, dd); }, defaults);
  // Vision towers alone: an encoder_model.
  if (const Node* type = hf.find("model_type");
      type && type->is_scalar() && (type->text == "clip_vision_model" || type->text == "clip"))
    return convert_clip(hf, d, defaults);
  const Family* family = find_family(hf, d);
  if (!family) return std::nullopt;
  Architecture a = family->defaults;
  apply_keys(hf, "hf.", family->keys,
             "not a known " + family->model_type +
                 " key; it may change the architecture, so it is not dropped",
             a, d);
  check_heads(a, hf, d);
  check_values(a, hf, d);
  check_limits(*family, a, hf, d);
  const bool rotary = resolve_rotary(*family, a, d);
  if (rotary) check_rope(a, hf, d);
  const bool windows = resolve_windows(a, d);
  if (!rotary || !windows) return std::nullopt;
  return document_json(a);
}

}  // namespace

std::vector<std::string> supported_model_types() {
  // The families, and the composite types that hold them or a vision tower.
  std::vector<std::string> names = families().names();
  for (const char* composite : {"clip", "clip_vision_model", "llava", "mllama"})
    names.push_back(composite);
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

std::optional<Json> import_node(const Node& hf, Diagnostics& diagnostics,
                                std::vector<std::string>* defaults) {
  Diagnostics problems;
  auto doc = convert(hf, problems, defaults);
  diagnostics.append(problems);
  if (!problems.ok()) return std::nullopt;
  return doc;
}

std::optional<Json> import_path(const std::string& path, Diagnostics& diagnostics,
                                std::vector<std::string>* defaults) {
  std::error_code ec;
  const bool folder = std::filesystem::is_directory(path, ec);
  // load_file reads .json as JSON and anything else as YAML, which also reads JSON.
  const auto hf = config::load_file(
      folder ? (std::filesystem::path(path) / "config.json").string() : path, diagnostics);
  if (!hf) return std::nullopt;
  return import_node(*hf, diagnostics, defaults);
}

}  // namespace

std::optional<Json> import_config(const Node& hf, Diagnostics& diagnostics) {
  return import_node(hf, diagnostics, nullptr);
}

std::optional<Json> import_file(const std::string& path, Diagnostics& diagnostics) {
  return import_path(path, diagnostics, nullptr);
}

std::optional<std::string> schema_reference(const std::string& output) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path folder = fs::absolute(fs::path(output), ec).lexically_normal().parent_path();
  if (ec) return std::nullopt;
  for (fs::path at = folder; !at.empty(); at = at.parent_path()) {
    const fs::path schema = at / "schemas" / "blocks.schema.json";
    if (fs::is_regular_file(schema, ec)) return schema.lexically_relative(folder).generic_string();
    if (at == at.parent_path()) break;
  }
  return std::nullopt;
}

std::optional<std::string> import_yaml(const std::string& path, Diagnostics& diagnostics,
                                       const std::string& schema) {
  std::vector<std::string> defaults;
  const auto doc = import_path(path, diagnostics, &defaults);
  if (!doc) return std::nullopt;
  const std::string schema_line =
      schema.empty() ? "" : "# yaml-language-server: $schema=" + schema + "\n";
  // Hub files of composite models list only overrides: say which class defaults filled the rest.
  std::string used;
  for (const auto& line : defaults) used += "#   " + line + "\n";
  if (!used.empty()) used = "# Class defaults used where the file is silent:\n" + used;
  return schema_line + "# Imported by `blockc import hf` from " + path + "\n" + used +
         config::to_yaml(*doc);
}

}  // namespace blocks::hf
