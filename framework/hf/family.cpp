// The family registry, filled once by the generated register_all_hf_families.
#include "framework/hf/family.h"

#include <algorithm>
#include <mutex>

#include "framework/config/error.h"

namespace blocks {
void register_all_hf_families(hf::Families& families);
}

namespace blocks::hf {

void Families::add(Family family) {
  if (find(family.model_type))
    throw RegistrationError("Hugging Face family '" + family.model_type + "' is registered twice");
  const auto at = std::upper_bound(
      all_.begin(), all_.end(), family,
      [](const Family& a, const Family& b) { return a.export_order < b.export_order; });
  all_.insert(at, std::move(family));
}

const Family* Families::find(const std::string& model_type) const {
  for (const auto& f : all_)
    if (f.model_type == model_type) return &f;
  return nullptr;
}

std::vector<std::string> Families::names() const {
  std::vector<std::string> out;
  for (const auto& f : all_) out.push_back(f.model_type);
  std::sort(out.begin(), out.end());
  return out;
}

const Families& families() {
  static Families all;
  static std::once_flag once;
  std::call_once(once, [] { register_all_hf_families(all); });
  return all;
}

std::string family_list(const std::string& last) {
  const auto names = families().names();
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? last : ", ") + names[i];
  return out;
}

}  // namespace blocks::hf
