// What every tokenizer checks and repairs: UTF-8 in, ids in range, UTF-8 out.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "framework/text/tokenizer.h"

namespace blocks::text {

size_t invalid_utf8_at(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t n = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, min = 0x10000;
    } else {
      return i;
    }
    uint32_t code = c & (0x3F >> n);
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= text.size()) return i;
      const auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) return i;
      code = (code << 6) | (d & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
    i += n + 1;
  }
  return std::string_view::npos;
}

void check_utf8(std::string_view text) {
  const size_t bad = invalid_utf8_at(text);
  if (bad == std::string_view::npos) return;
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[bad]));
  throw TokenizerError("the text is not UTF-8: byte " + std::to_string(bad) + " (" + hex +
                       ") starts no character");
}

std::string replace_invalid_utf8(const std::string& bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    const size_t bad = invalid_utf8_at(std::string_view(bytes).substr(i));
    if (bad == std::string_view::npos) {
      out.append(bytes, i, std::string::npos);
      break;
    }
    out.append(bytes, i, bad);
    out += "\xEF\xBF\xBD";
    i += bad + 1;
  }
  return out;
}

void check_id(int64_t id, int64_t size, const std::string& what) {
  if (id < 0 || id >= size)
    throw TokenizerError("id " + std::to_string(id) + " is outside the vocabulary (" +
                         std::to_string(size) + " ids, " + what + ")");
}

std::pair<std::string, size_t> unknown_special_token(const Tokenizer& tokenizer,
                                                     std::string_view text) {
  const auto added = tokenizer.added_tokens();
  for (size_t at = text.find("<|"); at != std::string_view::npos; at = text.find("<|", at + 1)) {
    size_t end = at + 2;
    while (end < text.size() && end - at < 64 &&
           (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_' ||
            text[end] == '-' || text[end] == '.'))
      ++end;
    if (end == at + 2 || text.compare(end, 2, "|>") != 0) continue;
    const std::string token(text.substr(at, end + 2 - at));
    if (std::find(added.begin(), added.end(), token) == added.end()) return {token, at};
  }
  return {"", std::string_view::npos};
}

}  // namespace blocks::text
