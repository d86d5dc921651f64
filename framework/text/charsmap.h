// SentencePiece's precompiled normalization rules (NormalizerSpec.precompiled_charsmap, what
// nmt_nfkc and nmt_nfkc_cf compile to: NFKC plus sentencepiece's own fixes, as T5's and
// Kosmos-2's models carry them): a Darts-clone double-array trie of source strings whose
// values index a blob of NUL-ended replacements. Read as normalizer.cc's
// DecodePrecompiledCharsMap lays it out: a little-endian uint32 trie size, the trie's 32-bit
// units, then the replacements.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace blocks::text {

class Charsmap {
 public:
  // Throws TokenizerError naming `file` for a blob that is cut (its trie past its end, or its
  // replacements not NUL-ended).
  Charsmap(std::string_view blob, const std::string& file);

  // The longest rule matching the start of `text` (Darts' commonPrefixSearch, the longest of its
  // results): its replacement and how many bytes of `text` it covers; {"", 0} when none does.
  std::pair<std::string_view, size_t> longest_prefix(std::string_view text) const;

 private:
  std::vector<uint32_t> units_;
  std::string replacements_;
};

}  // namespace blocks::text
