#include "framework/text/charsmap.h"

#include <cstring>

#include "framework/text/tokenizer.h"

namespace blocks::text {

namespace {

// darts.h's DoubleArrayUnit.
bool has_leaf(uint32_t unit) { return (unit >> 8) & 1; }
uint32_t value(uint32_t unit) { return unit & ((1U << 31) - 1); }
uint32_t label(uint32_t unit) { return unit & ((1U << 31) | 0xFF); }
uint32_t offset(uint32_t unit) { return (unit >> 10) << ((unit & (1U << 9)) >> 6); }

}  // namespace

Charsmap::Charsmap(std::string_view blob, const std::string& file) {
  // Darts checks nothing of its array; units are bounds-checked as they are read instead.
  auto fail = [&] {
    throw TokenizerError(file + ": the normalizer's precompiled charsmap is cut or damaged");
  };
  if (blob.size() < 4) fail();
  uint32_t trie_size = 0;
  for (int b = 3; b >= 0; --b) trie_size = trie_size << 8 | static_cast<uint8_t>(blob[b]);
  if (trie_size % 4 != 0 || trie_size == 0 || trie_size > blob.size() - 4) fail();
  units_.resize(trie_size / 4);
  for (size_t i = 0; i < units_.size(); ++i) {
    uint32_t u = 0;
    for (int b = 3; b >= 0; --b) u = u << 8 | static_cast<uint8_t>(blob[4 + 4 * i + b]);
    units_[i] = u;
  }
  replacements_ = std::string(blob.substr(4 + trie_size));
  if (replacements_.empty() || replacements_.back() != '\0') fail();
}

std::pair<std::string_view, size_t> Charsmap::longest_prefix(std::string_view text) const {
  std::pair<std::string_view, size_t> best{"", 0};
  size_t id = offset(units_[0]);
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    id ^= c;
    if (id >= units_.size()) break;
    const uint32_t unit = units_[id];
    if (label(unit) != c) break;
    id ^= offset(unit);
    if (id >= units_.size()) break;
    if (has_leaf(unit)) {
      // Past the replacements (a damaged file), the rule is taken as absent.
      const uint32_t at = value(units_[id]);
      if (at >= replacements_.size()) break;
      const char* replacement = replacements_.data() + at;
      best = {std::string_view(replacement, std::strlen(replacement)), i + 1};
    }
  }
  return best;
}

}  // namespace blocks::text
