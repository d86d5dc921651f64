// Where a config value came from: a file position, the command line, or C++ code.
#pragma once

#include <memory>
#include <string>

namespace blocks::config {

struct Mark {
  std::shared_ptr<const std::string> file;  // null: built in C++, no source position
  int line = 0;                             // 1-based; 0 when unknown
  int column = 0;                           // 1-based

  bool known() const { return file != nullptr; }
  // "FILE:LINE:COL", or "<code>" for values built in C++.
  std::string where() const;
};

inline std::shared_ptr<const std::string> source_name(std::string name) {
  return std::make_shared<const std::string>(std::move(name));
}

}  // namespace blocks::config
