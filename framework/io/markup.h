// Text inside XML and HTML-like markup (SVG drawings, Graphviz's HTML labels).
#pragma once

#include <string>
#include <string_view>

namespace blocks::io {

// `text` with &, <, > and " escaped, and the control characters XML 1.0 forbids even escaped
// (a folder or layer name may hold them) replaced by '?'.
std::string escape_markup(std::string_view text);

}  // namespace blocks::io
