// How each C++ field type is parsed from a Node, dumped to JSON, described in the schema and
// docs, and searched for nested configs. Add a specialization to support a new field type.
#pragma once

#include <charconv>
#include <cmath>
#include <map>
#include <type_traits>

#include "framework/config/registry.h"
#include "framework/config/schema_builder.h"

namespace blocks::config {

template <class T, class Enable = void>
struct Codec;

// Formats a number for messages and dumps: shortest text that reads back exactly.
std::string format_number(double value);
// Range checks declared on the field (min/max/above); reports at `mark`.
bool check_range(const FieldInfo& f, double value, const Mark& mark, ParseContext& ctx);
Json number_schema(const FieldInfo& f, const char* type);
std::optional<int64_t> parse_integer(std::string_view text);
std::optional<double> parse_double(std::string_view text);
// Parses a dynamic slot: finds the `type:` in the registry and parses that type's fields.
std::unique_ptr<Config> parse_dynamic(std::string_view kind, const Node& node, ParseContext& ctx);

template <>
struct Codec<bool> {
  static std::vector<const TypeInfo*> nested() { return {}; }
  static bool parse(const Node& n, bool& out, ParseContext& ctx, const FieldInfo&) {
    if (n.is_scalar() && !n.quoted && (n.text == "true" || n.text == "false")) {
      out = n.text == "true";
      return true;
    }
    ctx.error(n.mark, "expected true or false, found " + n.describe());
    return false;
  }
  static Json dump(bool v) { return v; }
  static Json schema(SchemaBuilder&, const FieldInfo&) { return {{"type", "boolean"}}; }
  static std::string text() { return "boolean"; }
};

template <>
struct Codec<int64_t> {
  static std::vector<const TypeInfo*> nested() { return {}; }
  static bool parse(const Node& n, int64_t& out, ParseContext& ctx, const FieldInfo& f) {
    std::optional<int64_t> v;
    if (n.is_scalar() && !n.quoted) v = parse_integer(n.text);
    if (!v) {
      ctx.error(n.mark, "expected an integer, found " + n.describe());
      return false;
    }
    if (!check_range(f, static_cast<double>(*v), n.mark, ctx)) return false;
    out = *v;
    return true;
  }
  static Json dump(int64_t v) { return v; }
  static Json schema(SchemaBuilder&, const FieldInfo& f) { return number_schema(f, "integer"); }
  static std::string text() { return "integer"; }
};

template <>
struct Codec<double> {
  static std::vector<const TypeInfo*> nested() { return {}; }
  static bool parse(const Node& n, double& out, ParseContext& ctx, const FieldInfo& f) {
    std::optional<double> v;
    if (n.is_scalar() && !n.quoted) v = parse_double(n.text);
    if (!v) {
      ctx.error(n.mark, "expected a number, found " + n.describe());
      return false;
    }
    if (!check_range(f, *v, n.mark, ctx)) return false;
    out = *v;
    return true;
  }
  static Json dump(double v) { return v; }
  static Json schema(SchemaBuilder&, const FieldInfo& f) { return number_schema(f, "number"); }
  static std::string text() { return "number"; }
};

template <>
struct Codec<std::string> {
  static std::vector<const TypeInfo*> nested() { return {}; }
  static bool parse(const Node& n, std::string& out, ParseContext& ctx, const FieldInfo& f);
  static Json dump(const std::string& v) { return v; }
  static Json schema(SchemaBuilder&, const FieldInfo& f);
  static std::string text() { return "string"; }
};

template <class T>
struct Codec<std::optional<T>> {
  static std::vector<const TypeInfo*> nested() { return Codec<T>::nested(); }
  static bool parse(const Node& n, std::optional<T>& out, ParseContext& ctx, const FieldInfo& f) {
    if (n.is_null()) {
      out.reset();
      return true;
    }
    T value{};
    if (!Codec<T>::parse(n, value, ctx, f)) return false;
    out = std::move(value);
    return true;
  }
  static Json dump(const std::optional<T>& v) { return v ? Codec<T>::dump(*v) : Json(nullptr); }
  static Json schema(SchemaBuilder& b, const FieldInfo& f) {
    return {{"anyOf", Json::array({Codec<T>::schema(b, f), Json{{"type", "null"}}})}};
  }
  static std::string text() { return Codec<T>::text() + " or null"; }
  template <class V>
  static void children(std::optional<T>& v, const V& visit, const std::string& name) {
    if (v) Codec<T>::children(*v, visit, name);
  }
};

template <class T>
struct Codec<std::vector<T>> {
  static std::vector<const TypeInfo*> nested() { return Codec<T>::nested(); }
  static bool parse(const Node& n, std::vector<T>& out, ParseContext& ctx, const FieldInfo& f) {
    if (!n.is_sequence()) {
      ctx.error(n.mark, "expected a list, found " + n.describe());
      return false;
    }
    out.clear();
    out.reserve(n.items.size());
    bool ok = true;
    for (size_t i = 0; i < n.items.size(); ++i) {
      ParseContext::Scope scope(ctx, "[" + std::to_string(i) + "]");
      T value{};
      ok = Codec<T>::parse(n.items[i], value, ctx, f) && ok;
      out.push_back(std::move(value));
    }
    return ok;
  }
  static Json dump(const std::vector<T>& v) {
    Json out = Json::array();
    for (const auto& x : v) out.push_back(Codec<T>::dump(x));
    return out;
  }
  static Json schema(SchemaBuilder& b, const FieldInfo& f) {
    return {{"type", "array"}, {"items", Codec<T>::schema(b, f)}};
  }
  static std::string text() { return "list of " + Codec<T>::text(); }
  template <class V>
  static void children(std::vector<T>& v, const V& visit, const std::string& name) {
    for (size_t i = 0; i < v.size(); ++i)
      Codec<T>::children(v[i], visit_suffix(visit, "[" + std::to_string(i) + "]"), name);
  }
  template <class V>
  static auto visit_suffix(const V& visit, std::string suffix) {
    return [&visit, suffix = std::move(suffix)](Config& c, const std::string& s,
                                                const std::string& name) {
      visit(c, suffix + s, name);
    };
  }
};

template <class Key, class T>
struct Codec<std::map<Key, T>> {
  static_assert(std::is_same_v<Key, std::string> || std::is_same_v<Key, int64_t>);
  static std::vector<const TypeInfo*> nested() { return Codec<T>::nested(); }
  static bool parse(const Node& n, std::map<Key, T>& out, ParseContext& ctx, const FieldInfo& f) {
    if (!n.is_mapping()) {
      ctx.error(n.mark, "expected a mapping, found " + n.describe());
      return false;
    }
    out.clear();
    bool ok = true;
    for (const auto& e : n.entries) {
      ParseContext::Scope scope(ctx, "." + e.key);
      Key key{};
      if constexpr (std::is_same_v<Key, int64_t>) {
        auto k = parse_integer(e.key);
        if (!k) {
          ctx.error(e.key_mark, "expected an integer key, found '" + e.key + "'");
          ok = false;
          continue;
        }
        key = *k;
      } else {
        key = e.key;
      }
      T value{};
      ok = Codec<T>::parse(e.value, value, ctx, f) && ok;
      out[key] = std::move(value);
    }
    return ok;
  }
  static std::string key_text(const Key& k) {
    if constexpr (std::is_same_v<Key, int64_t>)
      return std::to_string(k);
    else
      return k;
  }
  static Json dump(const std::map<Key, T>& v) {
    Json out = Json::object();
    for (const auto& [k, x] : v) out[key_text(k)] = Codec<T>::dump(x);
    return out;
  }
  static Json schema(SchemaBuilder& b, const FieldInfo& f) {
    Json s = {{"type", "object"}, {"additionalProperties", Codec<T>::schema(b, f)}};
    if constexpr (std::is_same_v<Key, int64_t>) s["propertyNames"] = {{"pattern", "^-?[0-9]+$"}};
    return s;
  }
  static std::string text() {
    return std::string("mapping of ") + (std::is_same_v<Key, int64_t> ? "integer" : "name") +
           " to " + Codec<T>::text();
  }
  template <class V>
  static void children(std::map<Key, T>& v, const V& visit, const std::string& name) {
    for (auto& [k, x] : v) {
      std::string key = key_text(k);
      Codec<T>::children(
          x,
          [&visit, &key](Config& c, const std::string& s, const std::string& n) {
            visit(c, "." + key + s, n);
          },
          key);
    }
    (void)name;
  }
};

// Plain nested struct configs (LinearConfig inside AttentionConfig).
template <class T>
struct Codec<T, std::enable_if_t<std::is_base_of_v<Config, T>>> {
  static std::vector<const TypeInfo*> nested() { return {&type_info<T>()}; }
  static bool parse(const Node& n, T& out, ParseContext& ctx, const FieldInfo&) {
    if constexpr (requires { T::from_scalar(n, out, ctx); }) {
      if (n.is_scalar()) return T::from_scalar(n, out, ctx);
    }
    if (!n.is_mapping()) {
      ctx.error(n.mark, "expected a mapping, found " + n.describe());
      return false;
    }
    const size_t before = ctx.diagnostics().size();
    Node copy;
    const Node* src = &n;
    if (type_info<T>().preprocess) {
      copy = n;
      type_info<T>().preprocess(copy, ctx);
      src = &copy;
    }
    parse_fields(type_info<T>(), out, *src, ctx);
    return ctx.diagnostics().size() == before;
  }
  static Json dump(const T& v) { return dump_fields(type_info<T>(), v); }
  static Json schema(SchemaBuilder& b, const FieldInfo&) {
    if constexpr (requires(const Node& n, T& t, ParseContext& c) { T::from_scalar(n, t, c); })
      return {{"anyOf", Json::array({Json{{"type", "string"}}, b.ref_struct(type_info<T>())})}};
    else
      return b.ref_struct(type_info<T>());
  }
  static std::string text() { return type_info<T>().name; }
  template <class V>
  static void children(T& v, const V& visit, const std::string& name) {
    visit(v, "", name);
  }
};

template <class K>
struct Codec<Dynamic<K>> {
  static std::vector<const TypeInfo*> nested() { return {}; }
  static bool parse(const Node& n, Dynamic<K>& out, ParseContext& ctx, const FieldInfo&) {
    if (n.is_null()) {
      out.reset();
      return true;
    }
    const size_t before = ctx.diagnostics().size();
    std::unique_ptr<Config> made = parse_dynamic(K::kind_name, n, ctx);
    if (!made) return false;
    if (!dynamic_cast<K*>(made.get())) {
      ctx.error(n.mark, "type '" + made->type().name + "' is not a " + std::string(K::kind_name));
      return false;
    }
    out = Dynamic<K>(std::unique_ptr<K>(static_cast<K*>(made.release())));
    return ctx.diagnostics().size() == before;
  }
  static Json dump(const Dynamic<K>& v) {
    if (!v) return nullptr;
    return dump_fields(v->type(), *v, true);
  }
  static Json schema(SchemaBuilder& b, const FieldInfo&) {
    return {{"anyOf", Json::array({b.ref_kind(K::kind_name), Json{{"type", "null"}}})}};
  }
  static std::string text() { return std::string(K::kind_name); }
  template <class V>
  static void children(Dynamic<K>& v, const V& visit, const std::string& name) {
    if (v) visit(*v, "", name);
  }
};

// Whether a field type can hold configs (and so has Codec<T>::children).
template <class T>
struct holds_configs : std::bool_constant<std::is_base_of_v<Config, T>> {};
template <class K>
struct holds_configs<Dynamic<K>> : std::true_type {};
template <class T>
struct holds_configs<std::optional<T>> : holds_configs<T> {};
template <class T>
struct holds_configs<std::vector<T>> : holds_configs<T> {};
template <class K, class T>
struct holds_configs<std::map<K, T>> : holds_configs<T> {};
template <class T>
using has_children = holds_configs<T>;

// An unset optional or an empty dynamic slot.
template <class T>
bool is_unset(const T& v) {
  if constexpr (requires { v.has_value(); })
    return !v.has_value();
  else
    return false;
}

}  // namespace blocks::config
