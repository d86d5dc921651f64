// Errors as values (DESIGN principle 6): every problem found in a file is collected with its
// source mark and config path; only the CLI decides to print them and pick an exit code.
#pragma once

#include <string>
#include <vector>

#include "framework/config/error.h"
#include "framework/config/mark.h"

namespace blocks::config {

struct Diagnostic {
  Mark mark;
  std::string path;  // config path, e.g. model.decoder.block.mixer.heads; may be empty
  std::string message;

  // "FILE:LINE:COL: error: PATH: message"
  std::string format() const;
};

class Diagnostics {
 public:
  // Adds a problem; the same message at the same known mark is kept once (shortest path).
  void error(Mark mark, std::string path, std::string message);
  bool ok() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  // Every diagnostic formatted, one per line, in file order.
  std::string format() const;
  void append(const Diagnostics& other);

 private:
  std::vector<Diagnostic> items_;
};

// Thrown only where a caller asked for a value and there is none to return
// (e.g. blocks::load_model on an invalid file); carries every diagnostic.
class ConfigError : public Error {
 public:
  explicit ConfigError(Diagnostics diagnostics);
  const Diagnostics& diagnostics() const { return diagnostics_; }

 private:
  Diagnostics diagnostics_;
};

}  // namespace blocks::config
