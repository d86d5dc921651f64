// Optimizer parameter groups from the parameter table: one group per learning-rate scale, with
// lr = base lr x scale; frozen parameters (lr scale 0, or frozen by LoRA) are left out and have
// requires_grad turned off.
//
//   auto groups = blocks::param_groups(table, torch::optim::AdamWOptions(3e-4));
//   torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(3e-4));
#pragma once

#include <torch/optim/optimizer.h>

#include <map>
#include <memory>
#include <vector>

#include "framework/nn/builder.h"

namespace blocks {

template <class Options>
std::vector<torch::optim::OptimizerParamGroup> param_groups(const nn::ParameterTable& table,
                                                            const Options& base) {
  std::map<double, std::vector<at::Tensor>> by_scale;
  for (const auto& record : table) {
    if (!record.trainable || record.lr_scale == 0) {
      record.tensor.set_requires_grad(false);
      continue;
    }
    by_scale[record.lr_scale].push_back(record.tensor);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (auto& [scale, tensors] : by_scale) {
    auto options = std::make_unique<Options>(base);
    options->lr(base.lr() * scale);
    groups.emplace_back(std::move(tensors), std::move(options));
  }
  return groups;
}

}  // namespace blocks
