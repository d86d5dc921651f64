// Every field of every type, from the declarations themselves: a valid non-default value
// parses and dumps back unchanged; a value outside the declared range or choices gives the
// exact error. New types and fields are covered without editing this file.
#include <gtest/gtest.h>

#include <algorithm>

#include "blocks/registry.h"
#include "framework/config/config.h"
#include "framework/config/load.h"

namespace {

using namespace blocks::config;

std::vector<const TypeInfo*> every_type() {
  std::vector<const TypeInfo*> out;
  std::vector<const TypeInfo*> pending = blocks::registry().all_types();
  while (!pending.empty()) {
    const TypeInfo* t = pending.back();
    pending.pop_back();
    if (std::find(out.begin(), out.end(), t) != out.end()) continue;
    out.push_back(t);
    for (const auto& f : t->fields)
      for (const TypeInfo* n : f.nested()) pending.push_back(n);
  }
  return out;
}

// The non-null alternative of a field's schema, or the schema itself.
Json value_schema(const FieldInfo& f) {
  SchemaBuilder b(blocks::registry());
  Json s = f.schema(b, f);
  if (s.contains("anyOf"))
    for (const auto& alt : s["anyOf"])
      if (alt.value("type", "") != "null") return alt;
  return s;
}

// A valid value that differs from the default, or null when the field is not a plain value.
std::optional<Json> sample(const FieldInfo& f) {
  const Json s = value_schema(f);
  const std::string type = s.value("type", "");
  const Json def = f.default_value();
  if (type == "boolean") return def.is_boolean() ? !def.get<bool>() : true;
  if (type == "string") {
    if (!f.choices.empty()) {
      for (auto it = f.choices.rbegin(); it != f.choices.rend(); ++it)
        if (!def.is_string() || *it != def.get<std::string>()) return *it;
      return std::nullopt;
    }
    return "sample_name";
  }
  if (type == "integer" || type == "number") {
    double low = f.min.value_or(f.above.value_or(0.0));
    double v = type == "integer" ? low + 3 : low + 0.25;
    if (f.max) v = std::min(v, *f.max);
    if (def.is_number() && def.get<double>() == v) v = type == "integer" ? v + 1 : v / 2;
    if (type == "integer") return static_cast<int64_t>(v);
    return v;
  }
  if (type == "array" && s["items"].value("type", "") == "integer") {
    const auto low = static_cast<int64_t>(f.min.value_or(0));
    return Json::array({low + 1, low + 2});
  }
  if (type == "array" && s["items"].value("type", "") == "string")
    return Json::array({"sample_name"});
  return std::nullopt;
}

Node to_node(const Json& j) {
  if (j.is_array()) {
    Node n = Node::sequence();
    for (const auto& x : j) n.items.push_back(to_node(x));
    return n;
  }
  if (j.is_string()) return Node::scalar(j.get<std::string>(), true);
  if (j.is_number_float()) return Node::scalar(format_number(j.get<double>()), false);
  return Node::scalar(j.dump(), false);
}

// Parses `node` as `info`, ignoring other required fields this test does not fill.
std::vector<std::string> parse_errors(const TypeInfo& info, const Node& node, Json* dumped) {
  Diagnostics d;
  ParseContext ctx(blocks::registry(), d);
  auto config = info.make();
  parse_fields(info, *config, node, ctx);
  if (dumped) *dumped = dump_fields(info, *config);
  std::vector<std::string> out;
  for (const auto& e : d.items())
    if (e.message.rfind("missing required field", 0) != 0) out.push_back(e.format());
  return out;
}

TEST(Fields, EveryTypeHasDocumentedFields) {
  const auto types = every_type();
  EXPECT_GE(types.size(), 35u);  // 30 registered types and 5 nested structs
  for (const TypeInfo* t : types) {
    EXPECT_FALSE(t->doc.empty()) << t->name;
    for (const auto& f : t->fields) EXPECT_FALSE(f.doc.empty()) << t->name << "." << f.name;
  }
}

TEST(Fields, EveryValueFieldRoundTrips) {
  size_t checked = 0;
  for (const TypeInfo* t : every_type()) {
    for (const auto& f : t->fields) {
      auto value = sample(f);
      if (!value) continue;
      SCOPED_TRACE(t->name + "." + f.name + " = " + value->dump());
      Node node = Node::mapping();
      node.set(f.name, to_node(*value));
      Json dumped;
      EXPECT_EQ(parse_errors(*t, node, &dumped), std::vector<std::string>{});
      EXPECT_EQ(dumped[f.name], *value);
      ++checked;
    }
  }
  EXPECT_GE(checked, 110u);
}

TEST(Fields, EveryBoundIsEnforcedWithItsMessage) {
  size_t checked = 0;
  for (const TypeInfo* t : every_type()) {
    for (const auto& f : t->fields) {
      const std::string type = value_schema(f).value("type", "");
      if (type != "integer" && type != "number") continue;
      auto check = [&](double bad, const std::string& expected) {
        Node node = Node::mapping();
        node.set(f.name, to_node(type == "integer" ? Json(static_cast<int64_t>(bad)) : Json(bad)));
        auto errors = parse_errors(*t, node, nullptr);
        ASSERT_EQ(errors.size(), 1u) << t->name << "." << f.name;
        EXPECT_EQ(errors[0], "<code>: error: " + f.name + ": " + expected);
        ++checked;
      };
      if (f.min) {
        const double bad = *f.min - 1;
        check(bad, "must be >= " + format_number(*f.min) + ", found " + format_number(bad));
      }
      if (f.above)
        check(*f.above,
              "must be > " + format_number(*f.above) + ", found " + format_number(*f.above));
      if (f.max) {
        const double bad = *f.max + 1;
        check(bad, "must be <= " + format_number(*f.max) + ", found " + format_number(bad));
      }
    }
  }
  EXPECT_GE(checked, 60u);
}

TEST(Fields, EveryChoiceListRejectsOthers) {
  size_t checked = 0;
  for (const TypeInfo* t : every_type()) {
    for (const auto& f : t->fields) {
      if (f.choices.empty()) continue;
      Node node = Node::mapping();
      node.set(f.name, Node::scalar("no_such_choice", false));
      auto errors = parse_errors(*t, node, nullptr);
      ASSERT_EQ(errors.size(), 1u);
      EXPECT_EQ(errors[0], "<code>: error: " + f.name +
                               ": unknown value 'no_such_choice' (valid: " + join(f.choices) + ")");
      ++checked;
    }
  }
  EXPECT_GE(checked, 10u);
}

TEST(Fields, WrongScalarTypesAreRejected) {
  for (const TypeInfo* t : every_type()) {
    for (const auto& f : t->fields) {
      const std::string type = value_schema(f).value("type", "");
      std::string expected;
      if (type == "integer") expected = "expected an integer, found 'abc'";
      if (type == "number") expected = "expected a number, found 'abc'";
      if (type == "boolean") expected = "expected true or false, found 'abc'";
      if (expected.empty()) continue;
      Node node = Node::mapping();
      node.set(f.name, Node::scalar("abc", false));
      auto errors = parse_errors(*t, node, nullptr);
      ASSERT_EQ(errors.size(), 1u) << t->name << "." << f.name;
      EXPECT_EQ(errors[0], "<code>: error: " + f.name + ": " + expected);
    }
  }
}

}  // namespace
