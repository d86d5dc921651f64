// Fields<C>: the builder a config type's `declare` uses to list its fields, and type_info<T>(),
// which runs `declare` once and caches the result.
#pragma once

#include <type_traits>

namespace blocks::config {

template <class C>
class Fields {
 public:
  explicit Fields(TypeInfo& info) : info_(info) {}

  // Chained limits on the field just added.
  class Ref {
   public:
    explicit Ref(FieldInfo& f) : f_(f) {}
    Ref& required() {
      f_.required = true;
      return *this;
    }
    Ref& min(double v) {
      f_.min = v;
      return *this;
    }
    Ref& max(double v) {
      f_.max = v;
      return *this;
    }
    Ref& above(double v) {
      f_.above = v;
      return *this;
    }
    Ref& choices(std::vector<std::string> v) {
      f_.choices = std::move(v);
      return *this;
    }
    // A shorthand the parser accepts (e.g. a string for a list), for the JSON Schema.
    Ref& schema_also(Json alternative) {
      f_.schema_alternative = std::move(alternative);
      return *this;
    }
    // For fields whose values are merged before parsing (partial configs), the schema to use.
    Ref& schema_as(Json schema) {
      f_.schema_replacement = std::move(schema);
      return *this;
    }

   private:
    FieldInfo& f_;
  };

  template <class T, class Owner>
  Ref add(std::string name, T Owner::*member, std::string doc, Hint hint = Hint::architecture) {
    static_assert(std::is_base_of_v<Owner, C>, "the member must belong to the config type");
    FieldInfo f;
    f.name = std::move(name);
    f.doc = std::move(doc);
    f.hint = hint;
    f.parse = [member](const FieldInfo& fi, Config& c, const Node& n, ParseContext& ctx) {
      Codec<T>::parse(n, static_cast<C&>(c).*member, ctx, fi);
    };
    f.dump = [member](const Config& c) { return Codec<T>::dump(static_cast<const C&>(c).*member); };
    f.present = [member, hint](const Config& c) {
      return hint != Hint::shortcut || !is_unset(static_cast<const C&>(c).*member);
    };
    f.empty = [member](const Config& c) { return is_unset(static_cast<const C&>(c).*member); };
    f.schema = [](SchemaBuilder& b, const FieldInfo& fi) {
      if (fi.schema_replacement) return *fi.schema_replacement;
      Json s = Codec<T>::schema(b, fi);
      if (fi.schema_alternative) return Json{{"anyOf", Json::array({s, *fi.schema_alternative})}};
      return s;
    };
    f.nested = [] { return Codec<T>::nested(); };
    f.type_text = [] { return Codec<T>::text(); };
    f.default_value = [member] { return Codec<T>::dump(C{}.*member); };
    if constexpr (has_children<T>::value) {
      f.children = [member, field = f.name](Config& c, const ChildVisitor& visit) {
        Codec<T>::children(
            static_cast<C&>(c).*member,
            [&visit, &field](Config& child, const std::string& s, const std::string& n) {
              visit(child, "." + field + s, n);
            },
            field);
      };
    }
    info_.fields.push_back(std::move(f));
    return Ref(info_.fields.back());
  }

 private:
  TypeInfo& info_;
};

template <class T, class = void>
struct has_preprocess : std::false_type {};
template <class T>
struct has_preprocess<T, std::void_t<decltype(&T::preprocess)>> : std::true_type {};

template <class T>
const TypeInfo& type_info() {
  static const TypeInfo info = [] {
    TypeInfo t;
    t.kind = std::string(T::kind_name);
    t.name = std::string(T::type_name);
    t.doc = std::string(T::type_doc);
    Fields<T> fields(t);
    T::declare(fields);
    t.make = [] { return std::make_unique<T>(); };
    if constexpr (has_preprocess<T>::value) t.preprocess = &T::preprocess;
    return t;
  }();
  return info;
}

}  // namespace blocks::config
