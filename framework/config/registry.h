// The registry of kinds (mixer, mlp, ...) and the dynamic types of each. Types join it through
// explicit calls (see blocks/registry.h), so registration survives static linking.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace blocks::config {

struct TypeInfo;

struct KindInfo {
  std::string name;
  std::string doc;
  // Kinds whose types a slot of this kind accepts, itself first (a `block` slot takes sequences).
  std::vector<std::string> accepts;
};

class Registry {
 public:
  // Throws std::logic_error on a duplicate kind: registration bugs must not pass silently.
  void add_kind(std::string name, std::string doc, std::vector<std::string> also_accepts = {});
  // Throws std::logic_error when the kind is unknown or the name is taken.
  void add_type(const TypeInfo& info);
  template <class T>
  void add();

  const KindInfo* kind(std::string_view name) const;
  std::vector<const KindInfo*> kinds() const;
  // A type that a slot of `kind` accepts, or null.
  const TypeInfo* find(std::string_view kind, std::string_view type) const;
  // Every type a slot of `kind` accepts, sorted by name.
  std::vector<const TypeInfo*> types_for(std::string_view kind) const;
  // Types registered under exactly `kind`.
  std::vector<const TypeInfo*> types_of(std::string_view kind) const;
  std::vector<const TypeInfo*> all_types() const;

 private:
  std::vector<KindInfo> kinds_;
  std::map<std::string, std::map<std::string, const TypeInfo*>, std::less<>> types_;
};

}  // namespace blocks::config

#include "framework/config/config.h"

template <class T>
void blocks::config::Registry::add() {
  add_type(type_info<T>());
}
