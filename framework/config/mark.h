// Where a config value came from: a file position, the command line, or C++ code.
#pragma once

#include <memory>
#include <string>

namespace blocks::config {

struct Via;

struct Mark {
  std::shared_ptr<const std::string> file;  // null: built in C++, no source position
  int line = 0;                             // 1-based; 0 when unknown
  int column = 0;                           // 1-based
  // How this mark's file was reached when another file named it in `extends`; null for the
  // file that was loaded itself.
  std::shared_ptr<const Via> via;

  bool known() const { return file != nullptr; }
  // "FILE:LINE:COL", "FILE" for the file as a whole (line 0), or "<code>" for values built
  // in C++.
  std::string where() const;
  // The files that led here, nearest first: "mounted from top.yaml:4:14, extended by
  // child.yaml:2:10"; empty for the loaded file itself.
  std::string chain() const;
};

// One step of a chain of `extends`: the value that named the file, and how it used it.
struct Via {
  std::string how;  // "mounted from" (a node's `extends`), "extended by" (the file's own)
  Mark at;          // the `extends` value, with its own chain
};

inline std::shared_ptr<const std::string> source_name(std::string name) {
  return std::make_shared<const std::string>(std::move(name));
}

}  // namespace blocks::config
