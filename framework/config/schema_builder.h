// Collects JSON Schema definitions while field codecs describe themselves.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace blocks::config {

struct TypeInfo;
class Registry;

class SchemaBuilder {
 public:
  explicit SchemaBuilder(const Registry& registry) : registry_(registry) {}
  // The definition of a plain nested struct type (defined on first use), or a mount.
  nlohmann::ordered_json ref_struct(const TypeInfo& info);
  // {"$ref": ...} to the union of every type a slot of `kind` accepts, and a mount.
  nlohmann::ordered_json ref_kind(std::string_view kind);
  // {"$ref": ...} to a node that says `extends: FILE#PATH` (compose.h).
  nlohmann::ordered_json ref_mount();
  nlohmann::ordered_json definitions() const;
  const Registry& registry() const { return registry_; }

 private:
  nlohmann::ordered_json object_schema(const TypeInfo& info, bool with_type);
  const Registry& registry_;
  std::map<std::string, nlohmann::ordered_json> defs_;
};

}  // namespace blocks::config
