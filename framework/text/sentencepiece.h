// SentencePiece's tokenizer.model read by blocks itself (Llama 2, Mistral: BPE; T5, Kosmos-2:
// unigram): the file's protobuf (sentencepiece_model.proto: pieces with scores and types, the
// trainer's and the normalizer's specs) parsed directly.
//   - Normalization as normalizer.cc's Normalize: the precompiled charsmap's longest rule at
//     each point (nmt_nfkc; none for the identity rule), user-defined pieces left as they are,
//     extra spaces removed (when asked), spaces escaped to U+2581, a dummy prefix.
//   - BPE as bpe_model.cc: characters (user-defined pieces whole), adjacent pairs merged highest
//     score first (leftmost on ties) while the merge is a piece, unused pieces split back.
//   - Unigram as unigram_model.cc's EncodeOptimized: the Viterbi path over every piece that
//     matches at each character (user-defined pieces scored to win, unused ones skipped, an
//     unknown character at the lowest score minus 10).
//   - What is no piece is spelled in <0xXX> byte pieces (byte_fallback) or one <unk> a run.
// libsentencepiece is not linked: Debian's exports the protobuf it bundles, and in a process
// that also loads LibTorch (libprotobuf.so.32) the two collide and the program crashes before
// main.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/text/charsmap.h"
#include "framework/text/tokenizer.h"

namespace blocks::text {

class SentencePiece : public Tokenizer {
 public:
  // Throws TokenizerError naming the file for a file that is not a model, a word or char model,
  // a damaged charsmap, or whitespace as a suffix.
  explicit SentencePiece(const std::string& path);

  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string piece(int64_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  std::string kind() const override {
    return unigram_ ? "SentencePiece unigram" : "SentencePiece BPE";
  }
  std::vector<std::string> added_tokens() const override { return user_defined_; }

  // sentencepiece_model.proto's SentencePiece.Type.
  enum class Type { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

 private:
  struct Piece {
    std::string text;
    float score = 0;
    Type type = Type::normal;
  };
  std::string normalize(std::string_view text) const;
  // normalizer.cc's NormalizePrefix: what the start of `text` becomes, and its length in `text`.
  std::pair<std::string, size_t> normalize_prefix(std::string_view text) const;
  void encode_bpe(const std::string& normalized, std::vector<int64_t>& out) const;
  void encode_unigram(const std::string& normalized, std::vector<int64_t>& out) const;
  void emit(const std::string& symbol, std::vector<int64_t>& out, bool& after_unknown) const;
  void emit_unknown(const std::string& symbol, std::vector<int64_t>& out,
                    bool& after_unknown) const;

  std::string path_;
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int64_t> mergeable_;  // normal, user-defined and unused
  std::vector<std::string> user_defined_;               // longest first
  std::unordered_map<std::string, std::pair<std::string, std::string>> split_unused_;
  int64_t byte_ids_[256];
  bool byte_fallback_ = false;
  int64_t unk_ = 0;
  std::string unk_surface_ = " \xE2\x81\x87 ";
  bool add_dummy_prefix_ = true, remove_extra_whitespaces_ = true, escape_whitespaces_ = true;
  bool unigram_ = false;
  std::unique_ptr<Charsmap> charsmap_;
  size_t longest_piece_ = 0;             // bytes
  float min_score_ = 0, max_score_ = 0;  // of the normal pieces (unigram)
};

}  // namespace blocks::text
