// Reading YAML (yaml-cpp) and JSON (nlohmann_json) text into source-marked Nodes, with limits
// that turn hostile input (alias bombs, deep nesting, huge files, bad UTF-8) into errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "framework/config/diagnostics.h"
#include "framework/config/node.h"

namespace blocks::config {

struct LoadLimits {
  size_t max_bytes = 16u << 20;  // a 70B config is a few KB; 16 MiB is generous
  int max_depth = 200;           // nesting of mappings and lists
  size_t max_nodes = 2'000'000;  // after alias expansion: stops billion-laughs bombs
  // Layers of one sequence, nested sequences' layers included: counting stays cheap for any
  // number, but building, drawing and layer-ranged LoRA work per layer (blockc --max-layers).
  int64_t max_layers = 100'000;
};

// `file` names the source in marks. Errors go to `diagnostics`; nullopt when the text is unusable.
std::optional<Node> load_yaml(std::string_view text, const std::string& file,
                              Diagnostics& diagnostics, const LoadLimits& limits = {});
std::optional<Node> load_json(std::string_view text, const std::string& file,
                              Diagnostics& diagnostics, const LoadLimits& limits = {});
// By extension: .json is JSON, anything else YAML. Checks size before reading.
std::optional<Node> load_file(const std::string& path, Diagnostics& diagnostics,
                              const LoadLimits& limits = {});

// Offset of the first byte that breaks UTF-8, or npos.
size_t find_invalid_utf8(std::string_view text);

}  // namespace blocks::config
