// Model dtypes by the names the tools accept (--dtype float32|bfloat16|float16|float64).
#pragma once

#include <c10/core/ScalarType.h>

#include <optional>
#include <string>

namespace blocks::build {

inline std::optional<at::ScalarType> dtype_from_name(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  if (name == "float64") return at::kDouble;
  return std::nullopt;
}

inline constexpr const char* kDtypeNames = "float32, bfloat16, float16, float64";

}  // namespace blocks::build
