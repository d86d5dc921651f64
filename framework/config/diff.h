// Differences between two resolved configs, architecture fields first (the field hints decide).
#pragma once

#include <string>
#include <vector>

#include "framework/config/document.h"

namespace blocks::config {

struct Difference {
  std::string path;
  Hint hint = Hint::architecture;
  Json before;  // null when the path exists only in the second config
  Json after;   // null when the path exists only in the first config
  bool only_before = false;
  bool only_after = false;
};

// Leaves of a resolved document: path -> (value, hint), in tree order.
struct Leaf {
  std::string path;
  Hint hint;
  Json value;
};
std::vector<Leaf> leaves(const Document& document);

// Sorted: architecture, optional, derived; tree order within each.
std::vector<Difference> diff(const Document& a, const Document& b);
std::string format_diff(const std::vector<Difference>& differences);

}  // namespace blocks::config
