// Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, Llama 3, Qwen2), as OpenAI's
// GPT-2 encoder.py and the `tokenizers` library compute it:
//   1. added tokens found in the text are cut out first (longest first) and map to their ids;
//   2. each remaining span is normalized (the normalizer's Unicode forms: Qwen2's NFC) and
//      pre-tokenized: the ByteLevel regex (GPT-2's), or a Split by the
//      file's regex (Llama 3, Qwen2) followed by ByteLevel without its regex; PCRE2 with Unicode
//      properties runs the patterns;
//   3. each piece's bytes become GPT-2's printable characters (bytes_to_unicode) and merge by
//      rank, lowest first, all occurrences left to right (encoder.py's bpe());
//   4. decoding maps the characters back to bytes.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/text/tokenizer.h"
#include "framework/text/unicode_forms.h"

namespace blocks::text {

class ByteLevelBpe : public Tokenizer {
 public:
  // Parses `path` (tokenizer.json). Throws TokenizerError naming the file and what it cannot
  // take (another model type, a normalizer or pre-tokenizer blocks does not compute, merges of
  // pieces outside the vocabulary).
  explicit ByteLevelBpe(const std::string& path);
  ~ByteLevelBpe() override;

  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string piece(int64_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  std::string kind() const override { return "byte-level BPE"; }
  std::vector<std::string> added_tokens() const override;

 private:
  struct Regex;
  void encode_span(std::string_view span, std::vector<int64_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<int64_t>& out) const;

  std::string path_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> pieces_;                     // by id
  std::unordered_map<std::string, int64_t> ranks_;      // "first second" -> rank
  std::vector<std::pair<std::string, int64_t>> added_;  // content, id; longest first
  std::vector<bool> is_added_;                          // by id
  std::unique_ptr<Regex> regex_;
  bool add_prefix_space_ = false;
  std::vector<UnicodeForm> forms_;  // the normalizer's, in order
  // Pieces already merged (text repeats its words), in shards by hash: encode may run on
  // several threads, and one lock over the whole cache made two threads 10x slower than one.
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int64_t>> pieces;
  };
  static constexpr size_t kCacheShards = 64;
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace blocks::text
