// A parameter table as the weights library's ModelTensors, for adapters files and PEFT folders
// (framework/weights/adapters.h), which do not see how a model was built.
#pragma once

#include <vector>

#include "framework/nn/builder.h"
#include "framework/weights/adapters.h"

namespace blocks::nn {

std::vector<weights::ModelTensor> model_tensors(const ParameterTable& table);

}  // namespace blocks::nn
