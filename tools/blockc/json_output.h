// One JSON line on stdout for --json outputs. Text that is not UTF-8 (a bytes model decodes any
// bytes) is written with U+FFFD instead of failing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace blockc {

inline std::string json_line(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace blockc
