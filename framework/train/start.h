// A run's start weights: a safetensors checkpoint in blocks' names (or any names, through a
// mapping file) or a Hugging Face folder (through its family's table), checked against the
// model's architecture before anything loads, then loaded strictly.
#pragma once

#include <string>

#include "framework/config/document.h"
#include "framework/nn/builder.h"

namespace blocks::train {

// Throws weights::ArchitectureError, weights::LoadError, weights::MappingError or
// weights::SafetensorsError naming the file and tensor.
void load_start_weights(const config::Document& document, const nn::ParameterTable& parameters,
                        const std::string& weights, const std::string& map);

}  // namespace blocks::train
