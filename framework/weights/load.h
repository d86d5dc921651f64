// Filling a model's parameters from safetensors files by name (blocks' own names: the identity
// mapping of mapping.h, which also maps foreign names). Strict by default: every problem (missing
// keys, unexpected keys, shape mismatches with both shapes) is listed at once and nothing is
// copied unless all is well.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "framework/config/error.h"

namespace blocks::weights {

struct LoadReport {
  std::vector<std::string> missing;     // parameters no file has
  std::vector<std::string> unexpected;  // file tensors no parameter wants
  std::vector<std::string> mismatched;  // "name: checkpoint [a, b], model [c, d]"
  std::vector<std::string> non_finite;  // parameters that received NaN or Inf (found while copying)
  int64_t loaded = 0;
  bool ok() const {
    return missing.empty() && unexpected.empty() && mismatched.empty() && non_finite.empty();
  }
  std::string format() const;
};

class LoadError : public Error {
 public:
  LoadError(const std::string& what, LoadReport report)
      : Error(what), report(std::move(report)) {}
  LoadReport report;
};

// "[2, 3]": shapes as every load message writes them.
std::string shape_text(const std::vector<int64_t>& shape);

// Copies each file tensor into the parameter of the same name (converting dtype and device).
// Strict: throws LoadError listing every problem, before copying anything. Not strict: loads
// what matches and returns the rest in the report.
// `progress`, when given, is called with (bytes done, bytes) of the parameters as loading goes.
LoadReport load_safetensors(const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                            const std::vector<std::string>& files, bool strict = true,
                            const std::function<void(size_t, size_t)>& progress = {});

}  // namespace blocks::weights
