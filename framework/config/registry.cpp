#include "framework/config/registry.h"

#include <algorithm>

namespace blocks::config {

void Registry::add_kind(std::string name, std::string doc, std::vector<std::string> also_accepts) {
  if (kind(name)) throw RegistrationError("kind '" + name + "' is registered twice");
  std::vector<std::string> accepts{name};
  accepts.insert(accepts.end(), also_accepts.begin(), also_accepts.end());
  types_[name];
  kinds_.push_back({std::move(name), std::move(doc), std::move(accepts)});
}

void Registry::add_type(const TypeInfo& info) {
  auto it = types_.find(info.kind);
  if (it == types_.end())
    throw RegistrationError("type '" + info.name + "' names unknown kind '" + info.kind + "'");
  if (it->second.count(info.name))
    throw RegistrationError(info.kind + " type '" + info.name + "' is registered twice");
  // A slot that accepts several kinds must still find one type per name.
  for (const auto& k : kinds_) {
    const bool accepts =
        std::find(k.accepts.begin(), k.accepts.end(), info.kind) != k.accepts.end();
    const TypeInfo* other = accepts ? find(k.name, info.name) : nullptr;
    if (other)
      throw RegistrationError(info.kind + " type '" + info.name + "' collides with " + other->kind +
                             " type '" + info.name + "' in " + k.name + " slots");
  }
  it->second[info.name] = &info;
}

void Registry::add_section(SectionInfo info) {
  if (info.name == "version" || info.name == "model" || info.name == "extends")
    throw RegistrationError("section '" + info.name + "' is named like a top-level field");
  if (section(info.name)) throw RegistrationError("section '" + info.name + "' is registered twice");
  if (!info.type) throw RegistrationError("section '" + info.name + "' has no type");
  sections_.push_back(std::move(info));
}

const SectionInfo* Registry::section(std::string_view name) const {
  for (const auto& s : sections_)
    if (s.name == name) return &s;
  return nullptr;
}

const KindInfo* Registry::kind(std::string_view name) const {
  for (const auto& k : kinds_)
    if (k.name == name) return &k;
  return nullptr;
}

std::vector<const KindInfo*> Registry::kinds() const {
  std::vector<const KindInfo*> out;
  for (const auto& k : kinds_) out.push_back(&k);
  return out;
}

const TypeInfo* Registry::find(std::string_view kind_name, std::string_view type) const {
  const KindInfo* k = kind(kind_name);
  if (!k) return nullptr;
  for (const auto& accepted : k->accepts) {
    auto it = types_.find(accepted);
    if (it == types_.end()) continue;
    auto t = it->second.find(std::string(type));
    if (t != it->second.end()) return t->second;
  }
  return nullptr;
}

std::vector<const TypeInfo*> Registry::types_of(std::string_view kind_name) const {
  std::vector<const TypeInfo*> out;
  auto it = types_.find(kind_name);
  if (it != types_.end())
    for (const auto& [name, info] : it->second) out.push_back(info);
  return out;
}

std::vector<const TypeInfo*> Registry::types_for(std::string_view kind_name) const {
  std::vector<const TypeInfo*> out;
  const KindInfo* k = kind(kind_name);
  if (!k) return out;
  for (const auto& accepted : k->accepts) {
    auto more = types_of(accepted);
    out.insert(out.end(), more.begin(), more.end());
  }
  std::sort(out.begin(), out.end(),
            [](const TypeInfo* a, const TypeInfo* b) { return a->name < b->name; });
  return out;
}

std::vector<const TypeInfo*> Registry::all_types() const {
  std::vector<const TypeInfo*> out;
  for (const auto& k : kinds_) {
    auto more = types_of(k.name);
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

}  // namespace blocks::config
