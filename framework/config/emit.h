// Writing resolved configs as YAML (block style, stable key order) or JSON.
#pragma once

#include <string>

#include "framework/config/config.h"

namespace blocks::config {

std::string to_yaml(const Json& value);
std::string to_json(const Json& value);  // two-space indent, trailing newline

}  // namespace blocks::config
