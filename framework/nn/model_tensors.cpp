#include "framework/nn/model_tensors.h"

namespace blocks::nn {

std::vector<weights::ModelTensor> model_tensors(const ParameterTable& table) {
  std::vector<weights::ModelTensor> out;
  out.reserve(table.size());
  for (const auto& p : table) out.push_back({p.name, p.tensor, p.role, p.trainable});
  return out;
}

}  // namespace blocks::nn
