// The base of every declared config type, and the declaration machinery: one `declare`
// function per type lists its fields (name, member, doc, hint, limits); parsing, dumping,
// the JSON Schema, the reference docs and diffs are all derived from that list.
//
//   struct RmsNormConfig : Declared<RmsNormConfig, NormalizationConfig> {
//     static constexpr std::string_view type_name = "rms_norm";
//     static constexpr std::string_view type_doc = "Root-mean-square normalization.";
//     double epsilon = 1e-5;
//     static void declare(Fields<RmsNormConfig>& f) {
//       f.add("epsilon", &RmsNormConfig::epsilon, "Added to the mean square.").above(0);
//     }
//   };
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/config/diagnostics.h"
#include "framework/config/node.h"

namespace blocks::config {

using Json = nlohmann::ordered_json;

// What a field means for users and tools (Fast-LLM's hints): architecture fields change the
// model's shape or math and lead diffs; optional fields are features and training knobs;
// derived fields are computed during resolution; shortcuts expand into other fields and vanish.
enum class Hint { architecture, optional, derived, shortcut };
std::string_view to_string(Hint hint);

class Config;
class ParseContext;
class SchemaBuilder;
struct ResolveContext;
struct TypeInfo;
struct FieldInfo;

// Visits the configs directly inside a field: `suffix` extends the config path
// (".mixer", "[3]", ".attention"), `name` is the logical name used by PEFT targets.
using ChildVisitor =
    std::function<void(Config& child, const std::string& suffix, const std::string& name)>;

// What forward FLOPs depend on beyond the resolved fields (see Config::forward_flops).
struct FlopContext {
  // Tokens each token attends to: the sequence length (`blockc summary --context`). No causal
  // halving: the cost of a token that sees a full context, as summary has always counted it.
  int64_t context_length = 2048;
};

class Config {
 public:
  static constexpr std::string_view kind_name = "";  // "" for plain nested structs

  Config() = default;
  Config(const Config&) = default;
  Config& operator=(const Config&) = default;
  virtual ~Config() = default;

  virtual const TypeInfo& type() const = 0;
  virtual std::unique_ptr<Config> clone() const = 0;
  // Pre-order: fill defaults of this config and its children from the context, and update the
  // context that the children will see. Must be idempotent: resolving twice changes nothing.
  virtual void resolve(ResolveContext&) {}
  // Post-order, once the children are resolved: values that depend on them.
  virtual void finish(ResolveContext&) {}
  // Post-order, on the resolved tree: cross-field rules.
  virtual void validate(const ResolveContext&) const {}
  // The parameters this config owns itself (not its children's), from the widths resolution
  // gave it; see parameters.h.
  virtual std::vector<struct ParameterShape> parameters() const;
  // Forward FLOPs per token of this config's own computation at one position it runs at, not
  // its children's. The default is the rule every type starts from, so that a new type with
  // weights never counts 0: 2 FLOPs (a multiply-accumulate) per element of every matrix
  // it owns (a parameter of rank >= 2: each token passes through each once); vectors (biases,
  // norm scales) are not counted. Types override it where a token does more than its
  // parameters say (attention's scores, Mamba's scan, a tied head's product with the
  // embeddings) or less (lookups, experts a token is not routed to); parameters.h sums it.
  virtual double forward_flops(const FlopContext& context) const;
  // How data moves through this config's children, for diagrams. Empty: through the
  // children in declaration order.
  virtual std::vector<struct FlowStage> flow() const;

  // Where this config and each of its fields (and each item of a list field, "name[i]") were
  // written; empty for configs built in C++.
  Mark mark;
  std::vector<std::pair<std::string, Mark>> field_marks;
  // Set when parsing this config's own fields failed: resolution then fills its defaults but
  // reports nothing for it or below it, where values may be knock-on effects of the error.
  bool parse_failed = false;
  // The mark of `field` ("heads", "pattern[2]", "overrides.3"), else of the field that holds
  // it ("pattern", "overrides"), else of this config.
  const Mark& mark_of(std::string_view field) const;
};

// One stage of a config's data flow: `fields` run in order, or side by side on the same input
// when `parallel` (query, key and value; gate and up); a residual stage adds its output to its
// input (x + f(x)); `after` fields run on the sum (post-norm).
struct FlowStage {
  std::vector<std::string> fields;
  bool residual = false;
  std::vector<std::string> after;
  bool parallel = false;
  // Labels of the edges into this stage, by the name of the child they come from (a map
  // field's key, else the field): what an early-fusion encoder's features replace.
  std::map<std::string, std::string> input_labels;
};

struct FieldInfo {
  std::string name;
  std::string doc;
  Hint hint = Hint::architecture;
  bool required = false;
  std::optional<double> min, max;          // inclusive bounds for numbers
  std::optional<double> above;             // exclusive lower bound
  std::vector<std::string> choices;        // allowed strings
  std::optional<Json> schema_alternative;  // also accepted in the JSON Schema (a shorthand form)
  std::optional<Json> schema_replacement;  // replaces the generated schema (partial configs)

  std::function<void(const FieldInfo&, Config&, const Node&, ParseContext&)> parse;
  std::function<Json(const Config&)> dump;
  std::function<bool(const Config&)> present;  // false: left out of dumps (unset shortcut)
  std::function<bool(const Config&)> empty;    // an unset optional or dynamic slot
  std::function<Json(SchemaBuilder&, const FieldInfo&)> schema;
  std::function<std::string()> type_text;  // "integer", "list of block", ...
  std::function<Json()> default_value;     // dump of a default-constructed config's field
  std::function<void(Config&, const ChildVisitor&)> children;  // empty: holds no configs
  std::function<std::vector<const TypeInfo*>()> nested;        // struct types it can hold
};

struct TypeInfo {
  std::string kind;  // "mixer"; "" for plain nested structs such as `linear`
  std::string name;  // "attention"
  std::string doc;
  std::vector<FieldInfo> fields;
  std::function<std::unique_ptr<Config>()> make;
  // Optional rewrite of the raw node before its fields are parsed (e.g. per-layer overrides
  // that merge onto a named block).
  void (*preprocess)(Node&, ParseContext&) = nullptr;

  const FieldInfo* field(std::string_view name) const;
  std::vector<std::string> field_names() const;
};

// Parsing state: the registry of dynamic types, where errors go, and the current config path.
class ParseContext {
 public:
  ParseContext(const class Registry& registry, Diagnostics& diagnostics)
      : registry_(registry), diagnostics_(diagnostics) {}
  const Registry& registry() const { return registry_; }
  Diagnostics& diagnostics() { return diagnostics_; }
  const std::string& path() const { return path_; }
  void error(const Mark& mark, std::string message) {
    diagnostics_.error(mark, path_, std::move(message));
  }

  // Extends the path for one scope.
  class Scope {
   public:
    // A leading '.' is dropped at the root, so paths read "model.x", never ".model.x".
    Scope(ParseContext& ctx, std::string_view suffix) : ctx_(ctx), size_(ctx.path_.size()) {
      if (ctx.path_.empty() && !suffix.empty() && suffix[0] == '.') suffix.remove_prefix(1);
      ctx.path_ += suffix;
    }
    ~Scope() { ctx_.path_.resize(size_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ParseContext& ctx_;
    size_t size_;
  };

 private:
  const Registry& registry_;
  Diagnostics& diagnostics_;
  std::string path_;
};

// Fills `config`'s fields from a mapping node; unknown keys and missing required fields are
// reported. `skip` names keys that the caller handled (the `type:` of dynamic configs).
void parse_fields(const TypeInfo& info, Config& config, const Node& node, ParseContext& ctx,
                  std::string_view skip = {});
// The dump of `config`'s fields; with `with_type`, `type:` comes first (dynamic slots).
Json dump_fields(const TypeInfo& info, const Config& config, bool with_type = false);
// The closest of `candidates` to `word`, if close enough to be a likely typo.
std::optional<std::string> did_you_mean(std::string_view word,
                                        const std::vector<std::string>& candidates);
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");

template <class T>
const TypeInfo& type_info();

// CRTP helper: gives a declared config its TypeInfo and value-semantic clone.
template <class Self, class Base>
class Declared : public Base {
 public:
  const TypeInfo& type() const override { return type_info<Self>(); }
  std::unique_ptr<Config> clone() const override {
    return std::make_unique<Self>(static_cast<const Self&>(*this));
  }
};

// A polymorphic slot holding one config of kind K (e.g. Dynamic<MixerConfig>), chosen in YAML
// by `type:`. Copies deeply, so configs stay plain values.
template <class K>
class Dynamic {
 public:
  Dynamic() = default;
  template <class T, class = std::enable_if_t<std::is_base_of_v<K, T>>>
  Dynamic(T value) : ptr_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit on purpose
  explicit Dynamic(std::unique_ptr<K> ptr) : ptr_(std::move(ptr)) {}
  Dynamic(const Dynamic& o) : ptr_(o.ptr_ ? static_cast<K*>(o.ptr_->clone().release()) : nullptr) {}
  Dynamic(Dynamic&&) noexcept = default;
  Dynamic& operator=(const Dynamic& o) {
    if (this != &o) ptr_.reset(o.ptr_ ? static_cast<K*>(o.ptr_->clone().release()) : nullptr);
    return *this;
  }
  Dynamic& operator=(Dynamic&&) noexcept = default;

  bool has_value() const { return ptr_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  K& operator*() const { return *ptr_; }
  K* operator->() const { return ptr_.get(); }
  K* get() const { return ptr_.get(); }
  void reset() { ptr_.reset(); }
  // The registered type name ("attention"), or "" when empty.
  std::string_view type_name() const;
  template <class T>
  T* as() const {
    return dynamic_cast<T*>(ptr_.get());
  }

 private:
  std::unique_ptr<K> ptr_;
};

template <class T>
struct is_dynamic : std::false_type {};
template <class K>
struct is_dynamic<Dynamic<K>> : std::true_type {};

template <class K>
std::string_view Dynamic<K>::type_name() const {
  return ptr_ ? std::string_view(ptr_->type().name) : std::string_view();
}

// Sets an unset optional to a default: how parents push defaults into children.
template <class T, class U>
void set_default(std::optional<T>& value, U&& fallback) {
  if (!value) value = std::forward<U>(fallback);
}
template <class K, class U>
void set_default(Dynamic<K>& value, U&& fallback) {
  if (!value) value = std::forward<U>(fallback);
}

}  // namespace blocks::config

#include "framework/config/codec.h"
#include "framework/config/fields.h"
