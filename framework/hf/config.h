// Hugging Face `config.json` -> blocks config document, for every registered family
// (framework/hf/families/, listed by supported_model_types()). Every key is converted or known to
// be irrelevant; any other key is an error.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/diagnostics.h"
#include "framework/config/node.h"

namespace blocks::hf {

// The `model_type` values import_config understands, sorted.
std::vector<std::string> supported_model_types();

// Converts a loaded config.json into {"version": 1, "model": {...}}, the shape of
// configs/*.yaml. Null when anything is wrong; every problem of the file is then in
// `diagnostics` as `hf.KEY: message` at the key's or the value's mark.
//
//   config::Diagnostics d;
//   auto hf = config::load_file("Meta-Llama-3-8B/config.json", d);
//   auto doc = hf ? hf::import_config(*hf, d) : std::nullopt;
std::optional<config::Json> import_config(const config::Node& hf, config::Diagnostics& diagnostics);

// Reads `path` (a config.json, or a folder holding one) and converts it.
std::optional<config::Json> import_file(const std::string& path, config::Diagnostics& diagnostics);

// import_file as a YAML file for the zoo: a comment naming `path` and the document, after the
// yaml-language-server line pointing at `schema` when one is given (see schema_reference).
std::optional<std::string> import_yaml(const std::string& path, config::Diagnostics& diagnostics,
                                       const std::string& schema = "");

// The $schema reference for a YAML file written to `output`: schemas/blocks.schema.json of the
// nearest folder above `output` that has one (a blocks checkout), relative to `output`'s folder
// ("../schemas/blocks.schema.json" for configs/x.yaml); nullopt when no folder above has it.
std::optional<std::string> schema_reference(const std::string& output);

}  // namespace blocks::hf
