// The key-table engine: a family's config.json keys as data, each saying how it reads into the
// family-independent Architecture and how it is written back, or why it does not matter. One
// table serves import (apply_keys) and export (write_keys); families compose them from the
// builders below.
//
//   Keys keys = join_keys({common_keys(), {size("n_embd", &Architecture::hidden_size,
//                                                "hidden_size")}});
#pragma once

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/diagnostics.h"
#include "framework/config/node.h"
#include "framework/hf/architecture.h"

namespace blocks::hf {

// Reads one key's value into a Target; reports bad values at the value's mark.
template <class Target>
using Read = std::function<void(const config::Node& value, const std::string& path, Target&,
                                config::Diagnostics&)>;
// Writes one key of config.json from the Architecture (may write nothing, e.g. a null default).
using Write = std::function<void(const Architecture&, nlohmann::json& out)>;

template <class Target>
struct BasicKey {
  std::string key;
  Read<Target> read;  // null: irrelevant to the architecture
  Write write;        // null: not written (irrelevant, or a legacy alias)
  std::string note;   // what the key becomes, or why it is irrelevant
};

using Key = BasicKey<Architecture>;
using Keys = std::vector<Key>;

// ---- values: each checks its type and reports at the value's mark ----
bool parse(const config::Node& v, const std::string& path, config::Diagnostics& d, int64_t& out);
bool parse(const config::Node& v, const std::string& path, config::Diagnostics& d, double& out);
bool parse(const config::Node& v, const std::string& path, config::Diagnostics& d, bool& out);
bool parse(const config::Node& v, const std::string& path, config::Diagnostics& d,
           std::string& out);
template <class T>
bool parse(const config::Node& v, const std::string& path, config::Diagnostics& d,
           std::optional<T>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  T value{};
  if (!parse(v, path, d, value)) return false;
  out = value;
  return true;
}

// ---- builders ----

// Reads into `member` as its type; writes it back under the same key.
template <class Target, class T>
Read<Target> to(T Target::*member) {
  return [member](const config::Node& v, const std::string& path, Target& t,
                  config::Diagnostics& d) { parse(v, path, d, t.*member); };
}
template <class T>
Key field(std::string key, T Architecture::*member, std::string note) {
  const std::string name = key;
  return {std::move(key), to(member),
          [name, member](const Architecture& a, nlohmann::json& out) { out[name] = a.*member; },
          std::move(note)};
}

// A size (>= 1). `if_null` allows null and stores that value for it.
template <class Target>
Read<Target> count(int64_t Target::*member, std::optional<int64_t> if_null = std::nullopt) {
  return [member, if_null](const config::Node& v, const std::string& path, Target& t,
                           config::Diagnostics& d) {
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
// A size written back as it is (export states every size).
Key size(std::string key, int64_t Architecture::*member, std::string note,
         std::optional<int64_t> if_null = std::nullopt);

// Keeps the node for a step that needs other keys first (rope, layer_types).
Read<Architecture> keep(const config::Node* Architecture::*member);

// A switch blocks supports in one position only: null or `expected`, else `why` is the error.
template <class Target>
Read<Target> only(const std::string& expected, const std::string& why) {
  return [expected, why](const config::Node& v, const std::string& path, Target&,
                         config::Diagnostics& d) {
    if (v.is_null() || (v.is_scalar() && !v.quoted && v.text == expected)) return;
    d.error(v.mark, path, why + " (found " + v.describe() + "; only " + expected + " converts)");
  };
}
Key only_key(std::string key, const std::string& expected, const std::string& why);

// A key whose presence alone means an unsupported model.
Read<Architecture> refuse(const std::string& why);

// Irrelevant keys sharing one reason: read and written as nothing.
Keys irrelevant(std::initializer_list<const char*> keys, const std::string& why);

Keys join_keys(std::initializer_list<Keys> parts);

// `keys` without the named ones (a family that reads a shared key its own way).
Keys without(Keys keys, std::initializer_list<const char*> names);

// Applies `keys` to every entry of `mapping`; a key without a rule is an error (`unknown`, with
// a suggestion), never dropped.
template <class Target>
void apply_keys(const config::Node& mapping, const std::string& prefix,
                const std::vector<BasicKey<Target>>& keys, const std::string& unknown,
                Target& target, config::Diagnostics& d) {
  std::vector<std::string> names;
  for (const auto& k : keys) names.push_back(k.key);
  for (const auto& e : mapping.entries) {
    auto rule =
        std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.key == e.key; });
    if (rule == keys.end()) {
      std::string message = unknown;
      if (auto guess = config::did_you_mean(e.key, names))
        message += "; did you mean '" + *guess + "'?";
      d.error(e.key_mark, prefix + e.key, message);
    } else if (rule->read) {
      rule->read(e.value, prefix + e.key, target, d);
    }
  }
}

// Writes every key of `keys` that has a writer.
void write_keys(const Keys& keys, const Architecture& a, nlohmann::json& out);

// ---- keys shared by families ----

// transformers' ACT2FN names -> blocks activations.
const std::map<std::string, std::string>& activations();
// The key naming the MLP activation (hidden_act, activation_function); blocks' gelu_tanh is
// written as `tanh_name` (GPT-2: gelu_new, the Llama-style classes: gelu_pytorch_tanh).
Key activation_key(std::string key, std::string note, std::string tanh_name);
// The transformers name import reads back as `blocks_name`; empty when none.
std::string hf_activation(const std::string& blocks_name, const std::string& tanh_name);

// Keys any PretrainedConfig may carry.
Keys common_keys();

// rope_scaling / rope_parameters: applied to their mapping by the import (rope.cpp).
struct RopeKeys {
  std::string type = "default";
  std::string type_key;  // rope_type, or its legacy name type
  std::optional<double> theta, factor, low_freq_factor, high_freq_factor, beta_fast, beta_slow,
      attention_factor;
  std::optional<bool> truncate;
  int64_t original_context = 0;  // 0: not given
};
const std::vector<BasicKey<RopeKeys>>& rope_keys();
// The rope_scaling mapping of `rope` (null for default).
nlohmann::json rope_scaling_json(const Rotary& rope);

}  // namespace blocks::hf
