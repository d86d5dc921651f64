// Model dtypes by the names the tools accept (--dtype float32|bfloat16|float16|float64).
#pragma once

#include <c10/core/ScalarType.h>

#include <optional>
#include <string>
#include <utility>

namespace blocks::nn {

// The names, in one table: parsing and printing read the same pairs (Hugging Face's
// torch_dtype uses these names too).
inline constexpr std::pair<const char*, at::ScalarType> kDtypes[] = {
    {"float32", at::kFloat},
    {"bfloat16", at::kBFloat16},
    {"float16", at::kHalf},
    {"float64", at::kDouble},
};

inline std::optional<at::ScalarType> dtype_from_name(const std::string& name) {
  for (const auto& [n, type] : kDtypes)
    if (name == n) return type;
  return std::nullopt;
}

// The name of `type`, or nullopt for a dtype the tools do not build in.
inline std::optional<std::string> dtype_to_name(at::ScalarType type) {
  for (const auto& [n, t] : kDtypes)
    if (t == type) return n;
  return std::nullopt;
}

// "float32, bfloat16, float16, float64", for messages.
inline std::string dtype_names() {
  std::string out;
  for (const auto& [n, type] : kDtypes) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

}  // namespace blocks::nn
