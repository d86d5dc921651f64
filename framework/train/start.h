// A run's start weights: a safetensors checkpoint in blocks' names (or any names, through a
// mapping file) or a Hugging Face folder (through its family's table), checked against the
// model's architecture before anything loads, then loaded strictly.
#pragma once

#include <string>

#include "framework/config/document.h"
#include "framework/nn/builder.h"

namespace blocks::train {

// Returns the Hugging Face family `weights` came in ("" for blockc's names). Throws
// weights::ArchitectureError, weights::LoadError, weights::MappingError or
// weights::SafetensorsError naming the file and tensor.
std::string load_start_weights(const config::Document& document, const nn::ParameterTable& parameters,
                        const std::string& weights, const std::string& map);

// Loads start.adapters (an adapters file, or a PEFT folder in `family`'s names) onto the model.
// Returns how many tensors it filled; throws as weights::load_adapters does.
int64_t load_start_adapters(const config::Document& document,
                            const nn::ParameterTable& parameters, const std::string& adapters,
                            const std::string& family);

}  // namespace blocks::train
