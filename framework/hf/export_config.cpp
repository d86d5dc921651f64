// blocks document -> Hugging Face config.json. The exporter reads every architecture field of the
// resolved document into the family-independent Architecture, checking it against what the
// family can express (family.h); a field no check read is refused, not dropped. The family's
// key table (the one import_config reads with) then writes config.json.
#include "framework/hf/export_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "framework/config/codec.h"
#include "framework/hf/family.h"
#include "framework/hf/llava.h"

namespace blocks::hf {

namespace {

using config::Diagnostics;
using config::Json;

// Fields of a resolved document that train or initialize a model without changing what it
// computes; a config.json has no place for them (initializer_range aside, read separately).
bool training_only(const std::string& key) {
  static const std::set<std::string> keys = {
      "lr_scale",          "effective_lr_scale",    "trainable",          "apply_peft",
      "initialization",    "weight_initialization", "bias_initialization",
      "decoder_trainable", "encoders_trainable",    "fusion_trainable"};
  return keys.contains(key);
}

// A value for a message; numbers as the shortest text that reads back, floats with a point.
std::string show(const Json& value) {
  if (!value.is_number_float()) return value.dump();
  std::string text = config::format_number(value.get<double>());
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

bool close(double a, double b) {
  return std::abs(a - b) <= 1e-9 * std::max(std::abs(a), std::abs(b));
}

// The resolved document, read by config path ("model.decoder.num_layers"). It remembers what
// was read, so that a field no check looked at is an error: a new blocks feature is refused
// until the export knows what it means.
class Reader {
 public:
  Reader(const Json& document, Diagnostics& diagnostics) : document_(document), d_(diagnostics) {}

  const Json* find(const std::string& path) const {
    const Json* at = &document_;
    size_t start = 0;
    while (at && start <= path.size()) {
      const size_t dot = std::min(path.find('.', start), path.size());
      const std::string key = path.substr(start, dot - start);
      at = at->is_object() && at->contains(key) ? &(*at)[key] : nullptr;
      start = dot + 1;
    }
    return at;
  }

  // The value at `path`, marked read; null when absent.
  const Json& at(const std::string& path) {
    read_.insert(path);
    const Json* found = find(path);
    return found ? *found : null_;
  }

  // Marks everything under `path` read: a subtree refused or compared as a whole.
  void skip(const std::string& path) { read_.insert(path); }

  int64_t integer(const std::string& path) {
    const Json& v = at(path);
    if (v.is_number_integer()) return v.get<int64_t>();
    missing(path, "an integer", v);
    return 0;
  }
  std::optional<int64_t> optional_integer(const std::string& path) {
    const Json& v = at(path);
    if (v.is_null()) return std::nullopt;
    return integer(path);
  }
  double number(const std::string& path) {
    const Json& v = at(path);
    if (v.is_number()) return v.get<double>();
    missing(path, "a number", v);
    return 0.0;
  }
  bool boolean(const std::string& path) {
    const Json& v = at(path);
    if (v.is_boolean()) return v.get<bool>();
    missing(path, "true or false", v);
    return false;
  }
  std::string text(const std::string& path) {
    const Json& v = at(path);
    if (v.is_string()) return v.get<std::string>();
    missing(path, "a string", v);
    return "";
  }

  // Leaves of the document that no check read, training-only fields aside.
  std::vector<std::string> unread() const {
    std::vector<std::string> out;
    collect(document_, "", out);
    return out;
  }

 private:
  void missing(const std::string& path, const std::string& expected, const Json& found) {
    d_.error({}, path,
             "expected " + expected + ", found " + (found.is_null() ? "nothing" : show(found)) +
                 "; export_config reads a resolved document (Document::dump())");
  }

  bool was_read(const std::string& path) const {
    for (size_t end = path.size(); end != std::string::npos; end = path.rfind('.', end - 1)) {
      if (read_.contains(path.substr(0, end))) return true;
      if (end == 0) break;
    }
    return false;
  }

  void collect(const Json& j, const std::string& path, std::vector<std::string>& out) const {
    if (!j.is_object() || j.empty()) {
      if (!was_read(path)) out.push_back(path);
      return;
    }
    for (const auto& [key, value] : j.items())
      if (!training_only(key)) collect(value, path.empty() ? key : path + "." + key, out);
  }

  const Json& document_;
  Diagnostics& d_;
  std::set<std::string> read_;
  const Json null_;
};

struct Difference {
  std::string path;  // in `a`
  Json a, b;
};

// Leaves where two blocks differ, training-only fields aside; `path` names `a`'s place.
void differences(const Json& a, const Json& b, const std::string& path,
                 std::vector<Difference>& out) {
  if (!a.is_object() || !b.is_object()) {
    if (a != b) out.push_back({path, a, b});
    return;
  }
  for (const auto& [key, value] : a.items()) {
    if (training_only(key)) continue;
    differences(value, b.contains(key) ? b[key] : Json(), path + "." + key, out);
  }
}

// "a, b and c".
std::string words(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " and " : ", ") + items[i];
  return out;
}

// One export attempt for one family. Every check runs, so that one pass lists every reason.
class Exporter {
 public:
  Exporter(const Family& family, const Json& document, const ExportOptions& options,
           Diagnostics& diagnostics)
      : f_(family), r_(document, diagnostics), options_(options), d_(diagnostics) {
    a_ = f_.defaults;
    a_.init_std.reset();
    a_.torch_dtype = options_.torch_dtype;
    if (f_.rotary) a_.max_position_embeddings = options_.max_position_embeddings;
  }

  std::optional<Json> run() {
    if (r_.integer("version") != 1)
      d_.error({}, "version", "export_config reads version 1 documents");
    // A context length copied from a source folder is data from anywhere: never write one that
    // import would refuse.
    if (options_.max_position_embeddings && *options_.max_position_embeddings < 1)
      d_.error({}, "max_position_embeddings",
               "must be at least 1, found " + std::to_string(*options_.max_position_embeddings));
    const std::string type = r_.text("model.type");
    if (type != "language_model")
      refuse("model.type", "a '" + type + "' model", "it is a causal language model");
    a_.hidden_size = r_.integer("model.hidden_size");
    init_std();
    embeddings();
    decoder();
    head();
    peft();
    for (const auto& limit : f_.limits)
      if (!limit.holds(a_)) refuse("model.decoder.block." + limit.path, limit.what(a_), limit.why);
    for (const auto& path : r_.unread())
      d_.error({}, path,
               "not a field the Hugging Face export knows; it may change the architecture, so it "
               "is not dropped");
    if (!d_.ok()) return std::nullopt;
    nlohmann::json out = nlohmann::json::object();
    out["architectures"] = {f_.class_name};
    out["model_type"] = f_.model_type;
    write_keys(f_.keys, a_, out);
    return Json::parse(out.dump());  // keys sorted, as transformers writes them
  }

 private:
  struct Bias {
    std::string linear;
    std::string path;
    bool on = false;
  };

  // "<what> has no Hugging Face <family> equivalent (<why>)".
  void refuse(const std::string& path, const std::string& what, const std::string& why) {
    d_.error({}, path,
             what + " has no Hugging Face " + f_.model_type + " equivalent (" + why + ")");
  }

  // import_config's init_std: the normal std of every weight (transformers' _init_weights).
  void init_std() {
    const Json* word = r_.find("model.embeddings.word.initialization");
    if (word && word->value("type", "") == "normal" && word->value("mean", 1.0) == 0.0 &&
        word->contains("std"))
      a_.init_std = (*word)["std"].get<double>();
  }

  void embeddings() {
    const std::string e = "model.embeddings";
    a_.vocab_size = r_.integer(e + ".vocab_size");
    const auto positions = r_.optional_integer(e + ".max_positions");
    r_.skip(e + ".position");  // the position table's weight settings
    if (f_.rotary && positions)
      refuse(e + ".max_positions", "a learned position table",
             f_.model_type + " has rotary positions only");
    if (!f_.rotary && !positions)
      refuse(e + ".max_positions", "a model without learned positions",
             "gpt2 adds a table of n_positions positions");
    if (!f_.rotary && positions) {
      a_.learned_positions = *positions;
      if (options_.max_position_embeddings && *options_.max_position_embeddings != *positions)
        d_.error({}, e + ".max_positions",
                 "max_position_embeddings " + std::to_string(*options_.max_position_embeddings) +
                     " was asked for, but gpt2's n_positions is the position table's " +
                     std::to_string(*positions) + " rows");
    }
    a_.embedding_dropout = dropout(e + ".dropout", f_.embedding_dropout, "on the embeddings");
    embedding_scale(e + ".scale");
  }

  // Gemma multiplies its embeddings by sqrt(hidden_size); the others by nothing.
  void embedding_scale(const std::string& path) {
    const double scale = r_.find(path) ? r_.number(path) : 1.0;  // absent: before the field
    const double root = std::sqrt(static_cast<double>(a_.hidden_size));
    const bool by_root = close(scale, root) && !close(root, 1.0);
    a_.scale_embeddings = by_root;
    if (f_.scaled_embeddings && !by_root)
      refuse(path, "embedding scale " + show(scale),
             f_.model_type + " multiplies the embeddings by sqrt(hidden_size) = " + show(root));
    if (!f_.scaled_embeddings && !close(scale, 1.0))
      refuse(path, "embedding scale " + show(scale),
             f_.model_type + " adds the embeddings unscaled");
  }

  // A dropout the family's config may not have: refused unless 0 where it has none.
  double dropout(const std::string& path, bool has, const std::string& where) {
    const double p = r_.number(path);
    if (!has && p != 0.0)
      refuse(path, "dropout " + show(p) + " " + where, f_.model_type + " has none there");
    return has ? p : 0.0;
  }

  void decoder() {
    const std::string seq = "model.decoder";
    const std::string type = r_.text(seq + ".type");
    if (type != "repeat") {
      refuse(seq + ".type", "a " + type + " decoder", "its layers repeat one transformer block");
      r_.skip(seq);
      return;
    }
    a_.num_layers = r_.integer(seq + ".num_layers");
    const std::string block = seq + ".block";
    const std::string block_type = r_.text(block + ".type");
    if (block_type != "transformer") {
      refuse(block + ".type", "a " + block_type + " block",
             "each layer is one transformer block; a nested sequence is not");
      r_.skip(seq);
      return;
    }
    layer(block);
    windows(block);
  }

  void layer(const std::string& b) {
    mixer(b + ".mixer");
    mlp(b + ".mlp");
    normalizations(b);
    const std::string placement = r_.text(b + ".normalization_placement");
    r_.skip(b + ".sub_normalization");  // used by placement sub only
    if (placement != "pre")
      refuse(b + ".normalization_placement",
             placement == "sub" ? "sub-LN (normalization_placement sub)"
                                : "normalization_placement " + placement,
             f_.model_type + " normalizes the input of each branch: pre");
    const double scale = r_.number(b + ".residual_scale");
    if (scale != 1.0)
      refuse(b + ".residual_scale", "residual_scale " + show(scale),
             f_.model_type + " adds the residual unscaled");
    a_.residual_dropout = dropout(b + ".dropout", f_.residual_dropout, "on the branch outputs");
    check_biases();
  }

  void mixer(const std::string& m) {
    const std::string type = r_.text(m + ".type");
    if (type != "attention") {
      refuse(m + ".type", "a " + type + " mixer", f_.model_type + " layers use attention");
      r_.skip(m);
      return;
    }
    a_.heads = r_.integer(m + ".heads");
    a_.head_groups = r_.integer(m + ".head_groups");
    a_.head_size = r_.integer(m + ".head_size");
    heads_and_size(m);
    rotary(m + ".rotary");
    if (!r_.boolean(m + ".causal"))
      refuse(m + ".causal", "bidirectional attention",
             "a causal LM attends to earlier tokens only");
    r_.skip(m + ".window_size");  // read per layer by windows()
    softmax_scale(m + ".softmax_scale");
    const std::string qk_norm = r_.text(m + ".qk_norm.type");
    r_.skip(m + ".qk_norm");
    if (qk_norm != "none")
      refuse(m + ".qk_norm", "query/key normalization (" + qk_norm + ")",
             f_.model_type + " normalizes neither");
    a_.attention_dropout = r_.number(m + ".dropout");
    for (const char* linear : {"query", "key", "value", "output"}) bias(m, linear);
  }

  void heads_and_size(const std::string& m) {
    const int64_t heads = a_.heads, groups = a_.head_groups, head_size = a_.head_size;
    const bool even =
        heads > 0 && a_.hidden_size % heads == 0 && head_size == a_.hidden_size / heads;
    if (f_.head_groups) return;
    if (groups != heads)
      refuse(m + ".head_groups",
             "grouped-query attention (" + std::to_string(groups) + " key/value heads for " +
                 std::to_string(heads) + " query heads)",
             "gpt2 gives every query head its own key and value");
    if (!even)
      refuse(m + ".head_size",
             "head size " + std::to_string(head_size) + " with " + std::to_string(heads) +
                 " heads and hidden size " + std::to_string(a_.hidden_size),
             "gpt2's head size is n_embd / n_head");
  }

  void rotary(const std::string& p) {
    const std::string type = r_.text(p + ".type");
    r_.skip(p);
    if (!f_.rotary) {
      if (type != "none")
        refuse(p, type + " rotary", "gpt2 has learned absolute positions, not rotary");
      return;
    }
    if (type == "none") {
      refuse(p, "attention without rotary positions", f_.model_type + " rotates queries and keys");
      return;
    }
    if (std::find(f_.rope_types.begin(), f_.rope_types.end(), type) == f_.rope_types.end()) {
      refuse(p, type + " rotary", f_.model_type + " has " + words(f_.rope_types) + " rotary");
      return;
    }
    const std::string layout = r_.text(p + ".layout");
    if (layout != "half")
      refuse(p + ".layout", "the " + layout + " rotary layout",
             "transformers rotates halves: permute the query and key weights and use layout half");
    Rotary& rope = a_.rope;
    rope.type = type;
    rope.theta = r_.number(p + ".theta");
    if (type == "llama3") {
      rope.factor = r_.number(p + ".scale_factor");
      rope.low_freq_factor = r_.number(p + ".low_frequency_factor");
      rope.high_freq_factor = r_.number(p + ".high_frequency_factor");
      rope.original_context = r_.integer(p + ".original_context_length");
    } else if (type == "yarn") {
      rope.factor = r_.number(p + ".scale_factor");
      rope.original_context = r_.integer(p + ".original_context_length");
      rope.beta_fast = r_.number(p + ".beta_fast");
      rope.beta_slow = r_.number(p + ".beta_slow");
      const Json& factor = r_.at(p + ".attention_factor");
      rope.attention_factor.reset();
      if (!factor.is_null()) rope.attention_factor = r_.number(p + ".attention_factor");
      rope.truncate = r_.boolean(p + ".truncate");
    }
  }

  // transformers divides the logits by sqrt(head_size); GPT-2 may skip it (scale_attn_weights).
  void softmax_scale(const std::string& path) {
    const double scale = r_.number(path);
    const double usual =
        a_.head_size > 0 ? 1.0 / std::sqrt(static_cast<double>(a_.head_size)) : 0.0;
    if (!f_.rotary) a_.scale_attention = !close(scale, 1.0) || close(usual, 1.0);
    if (close(scale, usual) || (!f_.rotary && close(scale, 1.0))) return;
    refuse(path, "softmax_scale " + show(scale),
           f_.model_type + " scales the logits by 1 / sqrt(head_size) = " + show(usual) +
               (f_.rotary ? "" : ", or by 1 with scale_attn_weights false"));
  }

  void mlp(const std::string& p) {
    const std::string type = r_.text(p + ".type");
    if (type != f_.mlp) {
      refuse(p + ".type", "MLP type " + type, f_.model_type + "'s MLP is " + f_.mlp);
      r_.skip(p);
      return;
    }
    a_.mlp = type;
    a_.intermediate_size = r_.integer(p + ".intermediate_size");
    a_.activation = r_.text(p + ".activation");
    if (hf_activation(a_.activation, "gelu_pytorch_tanh").empty())
      refuse(p + ".activation", "activation " + a_.activation, "no transformers name reads back");
    const double p_drop = r_.find(p + ".dropout") ? r_.number(p + ".dropout") : 0.0;  // moe: none
    if (p_drop != 0.0)  // GPT-2's MLP dropout is resid_pdrop, after the down projection
      refuse(p + ".dropout", "dropout " + show(p_drop) + " after the MLP activation",
             f_.model_type + " has none there");
    if (type == "moe") experts(p);
    for (const char* linear : {"gate", "up", "down", "router"})
      if (r_.find(p + "." + linear)) bias(p, linear);
  }

  // Mixtral's sparse MLP: SwiGLU experts, softmax renormalized over the top k, no shared ones.
  void experts(const std::string& p) {
    a_.experts = r_.integer(p + ".experts");
    a_.top_k = r_.integer(p + ".top_k");
    a_.aux_loss_coefficient = r_.number(p + ".aux_loss_coefficient");
    a_.jitter = r_.number(p + ".jitter");
    if (!r_.boolean(p + ".gated"))
      refuse(p + ".gated", "experts without a gate", "mixtral's experts are SwiGLU");
    if (!r_.boolean(p + ".normalize_top_k"))
      refuse(p + ".normalize_top_k", "top-k routing weights left unnormalized",
             "mixtral renormalizes them to sum to 1");
    const int64_t shared = r_.integer(p + ".shared_experts");
    if (shared != 0)
      refuse(p + ".shared_experts", std::to_string(shared) + " shared experts",
             "mixtral routes every token to its top k only");
    for (const char* s : {"shared_intermediate_size", "shared_gate", "shared_up", "shared_down"})
      r_.skip(p + "." + s);  // unused without shared experts, refused above with them
    const double z = r_.number(p + ".z_loss_coefficient");
    if (z != 0.0) refuse(p + ".z_loss_coefficient", "a router z-loss", "mixtral has none");
  }

  // The block, mlp and head normalizations: the family's type and one epsilon for all three.
  void normalizations(const std::string& b) {
    norm_epsilon(b + ".normalization");
    norm_epsilon(b + ".mlp_normalization");
  }

  // The first normalization read gives the family's one epsilon; the others must agree.
  void norm_epsilon(const std::string& path) {
    const std::optional<double> e = normalization(path);
    if (!e) return;
    if (!epsilon_) {
      epsilon_ = {path, *e};
      a_.norm_epsilon = *e;
    } else if (*e != epsilon_->second) {
      refuse(path + ".epsilon",
             "epsilon " + show(*e) + " beside " + show(epsilon_->second) + " in " + epsilon_->first,
             f_.model_type + " has one " + (f_.rotary ? "rms_norm_eps" : "layer_norm_epsilon"));
    }
  }

  // The epsilon of the normalization at `path` when it is of the family's type.
  std::optional<double> normalization(const std::string& path) {
    const std::string type = r_.text(path + ".type");
    const std::string& wanted = f_.normalization;
    if (type != wanted) {
      refuse(path + ".type", "normalization type " + type,
             f_.model_type + " normalizes with " + wanted);
      r_.skip(path);
      return std::nullopt;
    }
    if (wanted == "layer_norm" && !r_.boolean(path + ".bias"))
      refuse(path + ".bias", "a layer_norm without bias", "gpt2's LayerNorms have one");
    // Absent: a document from before the field, whose norms scale by the weight alone.
    const double offset =
        r_.find(path + ".weight_offset") ? r_.number(path + ".weight_offset") : 0.0;
    if (offset != f_.norm_weight_offset)
      refuse(path + ".weight_offset", "weight_offset " + show(offset),
             f_.model_type + "'s RMSNorm scales by " +
                 (f_.norm_weight_offset == 0.0 ? std::string("the weight")
                                               : show(f_.norm_weight_offset) + " + weight"));
    return r_.number(path + ".epsilon");
  }

  void bias(const std::string& owner, const std::string& linear) {
    const std::string path = owner + "." + linear + ".bias";
    biases_.push_back({linear, path, r_.boolean(path)});
  }

  // After the whole block: the families say biases per group of linears, not per linear.
  void check_biases() {
    if (f_.biases == Biases::per_branch || f_.biases == Biases::attention) {
      if (const Bias* b = same_bias({"query", "key", "value", "output"}, "attention_bias"))
        a_.query_bias = a_.key_bias = a_.value_bias = a_.output_bias = b->on;
      if (f_.biases == Biases::per_branch) {
        if (const Bias* b = same_bias({"gate", "up", "down"}, "mlp_bias")) a_.mlp_bias = b->on;
        return;
      }
    }
    for (const auto& b : biases_) {
      const bool qkv = b.linear == "query" || b.linear == "key" || b.linear == "value";
      const bool attention = qkv || b.linear == "output";
      if (f_.biases == Biases::attention && attention) continue;  // attention_bias above
      const bool wanted = f_.biases == Biases::all || (f_.biases == Biases::qkv && qkv);
      if (b.on == wanted) continue;
      if (wanted)
        refuse(b.path, "the " + b.linear + " projection without a bias",
               f_.biases == Biases::all ? "every gpt2 linear has one"
                                        : "qwen2 always has query, key and value biases");
      else
        refuse(b.path, "a bias on the " + b.linear + " projection",
               f_.biases == Biases::qkv         ? "qwen2 has biases on query, key and value only"
               : f_.biases == Biases::attention ? f_.model_type + "'s MLP linears have none"
                                                : f_.model_type + "'s linears have none");
    }
    if (f_.biases == Biases::attention) return;
    a_.query_bias = a_.key_bias = a_.value_bias =
        f_.biases == Biases::all || f_.biases == Biases::qkv;
    a_.output_bias = a_.mlp_bias = f_.biases == Biases::all;
  }

  // Llama's attention_bias and mlp_bias: one switch for a group, the first linear decides.
  const Bias* same_bias(std::initializer_list<const char*> group, const std::string& key) {
    const Bias* first = nullptr;
    for (const auto& b : biases_) {
      if (std::find(group.begin(), group.end(), b.linear) == group.end()) continue;
      if (!first) {
        first = &b;
      } else if (b.on != first->on) {
        refuse(b.path,
               std::string(b.on ? "a bias" : "no bias") + " on the " + b.linear +
                   " projection while the " + first->linear + " projection has " +
                   (first->on ? "one" : "none"),
               f_.model_type + "'s " + key + " sets it for " +
                   config::join({group.begin(), group.end()}) + " alike");
      }
    }
    return first;
  }

  // The window of each layer: the block's, or an override's. Overrides may change nothing else.
  void windows(const std::string& block) {
    const std::string seq = "model.decoder";
    static const Json none;
    const Json* found = r_.find(block);  // not marked read: its fields are checked one by one
    const Json& base = found ? *found : none;
    const std::string base_path = block + ".mixer.window_size";
    std::vector<std::string> paths(static_cast<size_t>(std::max<int64_t>(a_.num_layers, 0)),
                                   base_path);
    std::vector<Json> sizes(paths.size(), base.is_object() && base.contains("mixer")
                                              ? base["mixer"].value("window_size", Json())
                                              : Json());
    const Json& overrides = r_.at(seq + ".overrides");
    r_.skip(seq + ".overrides");  // compared with the block as a whole
    if (overrides.is_object())
      for (const auto& [key, layer] : overrides.items())
        override_layer(seq + ".overrides." + key, key, layer, base, paths, sizes);
    a_.windows.assign(sizes.size(), 0);
    for (size_t i = 0; i < sizes.size(); ++i)
      if (sizes[i].is_number_integer()) a_.windows[i] = sizes[i].get<int64_t>();
    if (f_.windows == Windows::none) return no_windows(paths, sizes);
    if (f_.windows == Windows::uniform) return uniform_window(paths, sizes);
    per_layer_windows(paths, sizes);
  }

  // An override of layer `key` may change its window (recorded in paths and sizes) and nothing
  // that is architecture.
  void override_layer(const std::string& path, const std::string& key, const Json& layer,
                      const Json& base, std::vector<std::string>& paths, std::vector<Json>& sizes) {
    size_t index = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
    if (ec != std::errc() || end != key.data() + key.size() || index >= paths.size() ||
        !layer.is_object())
      return;
    Json alike = layer;
    Json reference = base;
    if (alike.contains("mixer") && reference.contains("mixer")) {
      paths[index] = path + ".mixer.window_size";
      sizes[index] = alike["mixer"].value("window_size", Json());
      alike["mixer"].erase("window_size");
      reference["mixer"].erase("window_size");
    }
    std::vector<Difference> changed;
    differences(alike, reference, path, changed);
    for (const auto& c : changed)
      refuse(c.path, show(c.a) + " in layer " + key + " beside " + show(c.b) + " in the others",
             f_.windows == Windows::per_layer ? "qwen2's layers differ in their sliding window only"
                                              : f_.model_type + "'s layers are all alike");
  }

  void no_windows(const std::vector<std::string>& paths, const std::vector<Json>& sizes) {
    std::set<std::string> refused;
    for (size_t i = 0; i < paths.size(); ++i)
      if (!sizes[i].is_null() && refused.insert(paths[i]).second)
        refuse(paths[i], "a sliding window of " + show(sizes[i]) + " tokens",
               f_.model_type + " attends to every earlier token; mistral and qwen2 have windows");
  }

  void uniform_window(const std::vector<std::string>& paths, const std::vector<Json>& sizes) {
    const Json first = sizes.empty() ? Json() : sizes[0];
    for (size_t i = 0; i < paths.size(); ++i) {
      if (sizes[i] == first) continue;
      refuse(paths[i],
             "layer " + std::to_string(i) + "'s window " + show(sizes[i]) + " beside layer 0's " +
                 show(first),
             f_.model_type + " has one sliding_window for every layer; qwen2 varies it by layer");
    }
  }

  // Qwen2: one window size; the sliding layers are those from max_window_layers on, or any
  // set as layer_types (transformers >= 4.53).
  void per_layer_windows(const std::vector<std::string>& paths, const std::vector<Json>& sizes) {
    std::optional<size_t> first;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i].is_null()) continue;
      if (!first) first = i;
      if (sizes[i] == sizes[*first]) continue;
      refuse(paths[i],
             "layer " + std::to_string(i) + "'s window " + show(sizes[i]) + " beside layer " +
                 std::to_string(*first) + "'s " + show(sizes[*first]),
             "qwen2 has one sliding_window size");
    }
  }

  void head() {
    norm_epsilon("model.head.normalization");
    a_.tied = r_.boolean("model.head.tied");
    r_.skip("model.head.output");  // the output matrix's weight settings, null when tied
  }

  void peft() {
    const std::string type = r_.text("model.peft.type");
    r_.skip("model.peft");
    if (type != "none")
      refuse("model.peft", type == "lora" ? "LoRA (peft lora)" : "peft " + type,
             "merge the adapters into the base weights, or export the base model");
  }

  const Family& f_;
  Reader r_;
  const ExportOptions& options_;
  Diagnostics& d_;
  Architecture a_;
  std::optional<std::pair<std::string, double>> epsilon_;  // where it was read, its value
  std::vector<Bias> biases_;
};

}  // namespace

const std::vector<std::string>& export_model_types() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& f : families().all()) out.push_back(f.model_type);
    return out;
  }();
  return names;
}

std::optional<Json> export_config(const Json& document, const ExportOptions& options,
                                  Diagnostics& diagnostics) {
  // Fusion models: LLaVA's composite config, its text_config through the families below.
  const Json* model = document.is_object() && document.contains("model") ? &document["model"]
                                                                         : nullptr;
  const bool fusion = model && model->is_object() && model->value("type", "") == "early_fusion";
  if (fusion || options.model_type == "llava") {
    if (!fusion) {
      diagnostics.error({}, "model.type",
                        "a llava config.json holds an early_fusion model, found '" +
                            (model && model->is_object() ? model->value("type", "") : "") + "'");
      return std::nullopt;
    }
    if (!options.model_type.empty() && options.model_type != "llava") {
      diagnostics.error({}, "model.type",
                        "an early_fusion model exports as llava, not '" + options.model_type + "'");
      return std::nullopt;
    }
    return export_llava(document, options,
                        [](const Json& text, const ExportOptions& o, Diagnostics& d) {
                          return export_config(text, o, d);
                        },
                        diagnostics);
  }
  if (!options.model_type.empty()) {
    if (const Family* f = families().find(options.model_type)) {
      Diagnostics problems;
      auto out = Exporter(*f, document, options, problems).run();
      diagnostics.append(problems);
      return out;
    }
    diagnostics.error({}, "model_type",
                      "cannot export to model_type '" + options.model_type +
                          "' (supported: " + config::join(export_model_types()) + ")");
    return std::nullopt;
  }
  // No family asked for: the first that fits; else the reasons of the nearest miss.
  std::optional<Diagnostics> nearest;
  for (const auto& f : families().all()) {
    Diagnostics problems;
    if (auto out = Exporter(f, document, options, problems).run()) return out;
    if (!nearest || problems.size() < nearest->size()) nearest = problems;
  }
  diagnostics.append(*nearest);
  return std::nullopt;
}

std::optional<Json> export_config(const Json& document, const std::string& model_type,
                                  Diagnostics& diagnostics) {
  ExportOptions options;
  options.model_type = model_type;
  return export_config(document, options, diagnostics);
}

}  // namespace blocks::hf
