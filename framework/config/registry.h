// The registry of kinds (mixer, mlp, ...) and the dynamic types of each. Types join it through
// explicit calls (see blocks/registry.h), so registration survives static linking.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace blocks::config {

struct TypeInfo;
class Config;
class Diagnostics;

// A top-level part of a config file beside `model`, of one fixed type (`train:` of a run file).
// `check`, when set, validates the resolved section against the resolved model.
struct SectionInfo {
  std::string name;
  std::string doc;
  const TypeInfo* type = nullptr;
  std::function<void(const Config& section, const Config& model, Diagnostics&)> check;
};

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
  // Throws std::logic_error on a duplicate section or one named like a top-level field.
  void add_section(SectionInfo info);
  template <class T>
  void add_section(std::string name, std::string doc,
                   decltype(SectionInfo::check) check = {});
  const SectionInfo* section(std::string_view name) const;
  const std::vector<SectionInfo>& sections() const { return sections_; }

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
  std::vector<SectionInfo> sections_;
  std::map<std::string, std::map<std::string, const TypeInfo*>, std::less<>> types_;
};

}  // namespace blocks::config

#include "framework/config/config.h"

template <class T>
void blocks::config::Registry::add() {
  add_type(type_info<T>());
}

template <class T>
void blocks::config::Registry::add_section(std::string name, std::string doc,
                                           decltype(SectionInfo::check) check) {
  add_section(SectionInfo{std::move(name), std::move(doc), &type_info<T>(), std::move(check)});
}
