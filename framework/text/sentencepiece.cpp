#include "framework/text/sentencepiece.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <queue>

#include "framework/io/files.h"

namespace blocks::text {

namespace {

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's meta space

// Protobuf's wire format, as far as the model file needs it.
class Wire {
 public:
  Wire(const char* begin, const char* end, const std::string& file)
      : p_(begin), end_(end), file_(file) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail();
      const auto byte = static_cast<uint8_t>(*p_++);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail();
  }
  Wire bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail();
    Wire inner(p_, p_ + n, file_);
    p_ += n;
    return inner;
  }
  std::string text() {
    Wire w = bytes();
    return std::string(w.p_, w.end_);
  }
  float fixed32() {
    if (end_ - p_ < 4) fail();
    float v;
    std::memcpy(&v, p_, 4);
    p_ += 4;
    return v;
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        return;
      case 1:
        if (end_ - p_ < 8) fail();
        p_ += 8;
        return;
      case 2:
        bytes();
        return;
      case 5:
        if (end_ - p_ < 4) fail();
        p_ += 4;
        return;
      default:
        fail();
    }
  }
  [[noreturn]] void fail() const {
    throw TokenizerError(file_ + ": not a SentencePiece model (its protobuf is cut or damaged)");
  }

 private:
  const char* p_;
  const char* end_;
  const std::string& file_;
};

size_t char_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

}  // namespace

SentencePiece::SentencePiece(const std::string& path) : path_(path) {
  const std::string data = io::read_file(path);
  Wire model(data.data(), data.data() + data.size(), path);
  int64_t model_type = 1;          // UNIGRAM, the proto's default
  int64_t bos_id = 1, eos_id = 2;  // the proto's defaults, which a model file leaves out
  bool whitespace_suffix = false;
  std::string charsmap;
  while (!model.done()) {
    const uint64_t tag = model.varint();
    const auto field = tag >> 3;
    const auto wire = static_cast<uint32_t>(tag & 7);
    if (field == 1 && wire == 2) {
      Wire w = model.bytes();
      Piece p;
      while (!w.done()) {
        const uint64_t t = w.varint();
        if ((t >> 3) == 1 && (t & 7) == 2)
          p.text = w.text();
        else if ((t >> 3) == 2 && (t & 7) == 5)
          p.score = w.fixed32();
        else if ((t >> 3) == 3 && (t & 7) == 0)
          p.type = static_cast<Type>(w.varint());
        else
          w.skip(static_cast<uint32_t>(t & 7));
      }
      pieces_.push_back(std::move(p));
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      Wire w = model.bytes();
      while (!w.done()) {
        const uint64_t t = w.varint();
        const auto f = t >> 3;
        if ((t & 7) == 0 && (f == 3 || f == 24 || f == 35 || (f >= 40 && f <= 43))) {
          const auto v = static_cast<int64_t>(static_cast<int32_t>(w.varint()));
          if (f == 3) model_type = v;
          if (f == 24) whitespace_suffix = v != 0;
          if (f == 35) byte_fallback_ = v != 0;
          if (f == 40) unk_ = v;
          if (f == 41) bos_id = v;
          if (f == 42) eos_id = v;
        } else if (f == 44 && (t & 7) == 2) {
          unk_surface_ = w.text();
        } else {
          w.skip(static_cast<uint32_t>(t & 7));
        }
      }
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      Wire w = model.bytes();
      while (!w.done()) {
        const uint64_t t = w.varint();
        const auto f = t >> 3;
        if (f == 2 && (t & 7) == 2)
          charsmap = w.text();
        else if (f == 3 && (t & 7) == 0)
          add_dummy_prefix_ = w.varint() != 0;
        else if (f == 4 && (t & 7) == 0)
          remove_extra_whitespaces_ = w.varint() != 0;
        else if (f == 5 && (t & 7) == 0)
          escape_whitespaces_ = w.varint() != 0;
        else
          w.skip(static_cast<uint32_t>(t & 7));
      }
    } else {
      model.skip(wire);
    }
  }
  if (pieces_.empty()) model.fail();
  if (model_type != 1 && model_type != 2)
    throw TokenizerError(path + ": a SentencePiece " +
                         std::string(model_type == 3 ? "word" : "char") +
                         " model; blocks computes SentencePiece BPE (Llama 2, Mistral) and "
                         "unigram (T5) models");
  unigram_ = model_type == 1;
  if (!charsmap.empty()) charsmap_ = std::make_unique<Charsmap>(charsmap, path);
  if (whitespace_suffix)
    throw TokenizerError(path + ": treat_whitespace_as_suffix is not computed");
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), int64_t{-1});
  for (size_t id = 0; id < pieces_.size(); ++id) {
    const Piece& p = pieces_[id];
    if (p.type == Type::normal || p.type == Type::user_defined || p.type == Type::unused)
      mergeable_.emplace(p.text, static_cast<int64_t>(id));
    if (p.type == Type::user_defined) user_defined_.push_back(p.text);
    longest_piece_ = std::max(longest_piece_, p.text.size());
    unsigned value = 0;
    if (p.type == Type::byte && p.text.size() == 6 &&
        std::sscanf(p.text.c_str(), "<0x%2X>", &value) == 1)
      byte_ids_[value] = static_cast<int64_t>(id);
  }
  // unigram_model.cc's bounds: FLT_MIN, not -FLT_MAX, starts the maximum.
  min_score_ = std::numeric_limits<float>::max();
  max_score_ = std::numeric_limits<float>::min();
  for (const Piece& p : pieces_)
    if (p.type == Type::normal) {
      min_score_ = std::min(min_score_, p.score);
      max_score_ = std::max(max_score_, p.score);
    }
  std::sort(user_defined_.begin(), user_defined_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  if (unk_ < 0 || unk_ >= vocab_size()) model.fail();
  if (bos_id >= 0 && bos_id < vocab_size()) bos = bos_id;  // -1: the model has none
  if (eos_id >= 0 && eos_id < vocab_size()) eos = eos_id;
  if (byte_fallback_)
    for (int b = 0; b < 256; ++b)
      if (byte_ids_[b] < 0)
        throw TokenizerError(path + ": byte_fallback without a piece for byte " +
                             std::to_string(b));
}

std::pair<std::string, size_t> SentencePiece::normalize_prefix(std::string_view text) const {
  // User-defined pieces stay as they are (the processor's prefix matcher).
  for (const auto& u : user_defined_)
    if (text.compare(0, u.size(), u) == 0) return {u, u.size()};
  if (charsmap_) {
    const auto [replacement, length] = charsmap_->longest_prefix(text);
    if (length > 0) return {std::string(replacement), length};
  }
  const size_t length = std::min(char_length(static_cast<unsigned char>(text[0])), text.size());
  return {std::string(text.substr(0, length)), length};
}

// normalizer.cc's Normalize, step for step.
std::string SentencePiece::normalize(std::string_view text) const {
  if (remove_extra_whitespaces_)
    while (!text.empty()) {
      const auto [piece, length] = normalize_prefix(text);
      if (piece != " ") break;
      text.remove_prefix(length);
    }
  if (text.empty()) return {};
  const std::string space = escape_whitespaces_ ? kSpace : " ";
  std::string out = add_dummy_prefix_ ? space : std::string();
  bool previous_space = remove_extra_whitespaces_;
  while (!text.empty()) {
    const auto [piece, length] = normalize_prefix(text);
    std::string_view p = piece;
    if (previous_space)
      while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    if (!p.empty()) {
      for (char c : p)
        if (escape_whitespaces_ && c == ' ')
          out += space;
        else
          out += c;
      previous_space = p.back() == ' ';
    }
    text.remove_prefix(length);
    if (!remove_extra_whitespaces_) previous_space = false;
  }
  if (remove_extra_whitespaces_)
    while (out.size() >= space.size() &&
           out.compare(out.size() - space.size(), space.size(), space) == 0)
      out.resize(out.size() - space.size());
  return out;
}

std::vector<int64_t> SentencePiece::encode(std::string_view text) const {
  check_utf8(text);
  const std::string normalized = normalize(text);
  std::vector<int64_t> out;
  if (unigram_)
    encode_unigram(normalized, out);
  else
    encode_bpe(normalized, out);
  return out;
}

void SentencePiece::encode_unigram(const std::string& normalized, std::vector<int64_t>& out) const {
  struct Best {
    int64_t id = -1;
    float score = 0;
    int64_t starts_at = -1;
  };
  const auto size = static_cast<int64_t>(normalized.size());
  const float unknown_score = min_score_ - 10.0F;  // kUnkPenalty
  std::vector<Best> ends_at(static_cast<size_t>(size + 1));
  for (int64_t start = 0; start < size;) {
    const float before = ends_at[static_cast<size_t>(start)].score;
    const auto char_bytes = static_cast<int64_t>(std::min<size_t>(
        char_length(static_cast<unsigned char>(normalized[static_cast<size_t>(start)])),
        static_cast<size_t>(size - start)));
    bool single = false;
    const int64_t longest = std::min<int64_t>(static_cast<int64_t>(longest_piece_), size - start);
    for (int64_t length = 1; length <= longest; ++length) {
      const auto found = mergeable_.find(
          normalized.substr(static_cast<size_t>(start), static_cast<size_t>(length)));
      if (found == mergeable_.end()) continue;
      const Piece& piece = pieces_[static_cast<size_t>(found->second)];
      if (piece.type == Type::unused) continue;
      // unigram_model.cc's arithmetic: its ternary makes the score a double (the user-defined
      // bonus subtracts a double 0.1), so each candidate is summed in double and stored as a
      // float; summed in float, near-ties between paths come out the other way.
      const double score = piece.type == Type::user_defined
                               ? static_cast<float>(length) * max_score_ - 0.1
                               : static_cast<double>(piece.score);
      const double candidate = score + before;
      Best& target = ends_at[static_cast<size_t>(start + length)];
      if (target.starts_at == -1 || candidate > target.score)
        target = {found->second, static_cast<float>(candidate), start};
      if (length == char_bytes) single = true;
    }
    if (!single) {
      Best& target = ends_at[static_cast<size_t>(start + char_bytes)];
      if (target.starts_at == -1 || unknown_score + before > target.score)
        target = {unk_, unknown_score + before, start};
    }
    start += char_bytes;
  }
  std::vector<std::pair<int64_t, int64_t>> path;  // id, start
  for (int64_t end = size; end > 0;) {
    const Best& b = ends_at[static_cast<size_t>(end)];
    path.emplace_back(b.id, b.starts_at);
    end = b.starts_at;
  }
  bool after_unknown = false;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    const int64_t end = it + 1 == path.rend() ? size : (it + 1)->second;
    if (it->first == unk_) {
      emit_unknown(
          normalized.substr(static_cast<size_t>(it->second), static_cast<size_t>(end - it->second)),
          out, after_unknown);
    } else {
      out.push_back(it->first);
      after_unknown = false;
    }
  }
}

void SentencePiece::encode_bpe(const std::string& normalized, std::vector<int64_t>& out) const {
  struct Symbol {
    int prev, next;
    bool frozen;
    size_t begin, size;  // into `normalized`
  };
  std::vector<Symbol> symbols;
  for (size_t at = 0; at < normalized.size();) {
    size_t size = 0;
    bool frozen = false;
    for (const auto& u : user_defined_)
      if (normalized.compare(at, u.size(), u) == 0) {
        size = u.size(), frozen = true;
        break;
      }
    if (!size)
      size =
          std::min(char_length(static_cast<unsigned char>(normalized[at])), normalized.size() - at);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, -1, frozen, at, size});
    if (index > 0) symbols[static_cast<size_t>(index - 1)].next = index;
    at += size;
  }
  struct Pair {
    int left, right;
    float score;
    size_t size;
  };
  auto worse = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol &l = symbols[static_cast<size_t>(left)], &r = symbols[static_cast<size_t>(right)];
    if (l.frozen || r.frozen) return;
    const std::string merged = normalized.substr(l.begin, l.size + r.size);
    const auto it = mergeable_.find(merged);
    if (it == mergeable_.end()) return;
    agenda.push({left, right, pieces_[static_cast<size_t>(it->second)].score, merged.size()});
  };
  for (size_t i = 1; i < symbols.size(); ++i)
    consider(static_cast<int>(i - 1), static_cast<int>(i));
  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& l = symbols[static_cast<size_t>(top.left)];
    Symbol& r = symbols[static_cast<size_t>(top.right)];
    if (l.size == 0 || r.size == 0 || l.size + r.size != top.size || l.next != top.right) continue;
    l.size += r.size;
    l.next = r.next;
    if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = top.left;
    r.size = 0;
    consider(l.prev, top.left);
    consider(top.left, l.next);
  }
  bool after_unknown = false;
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    const Symbol& s = symbols[static_cast<size_t>(i)];
    emit(normalized.substr(s.begin, s.size), out, after_unknown);
  }
}

// One merged symbol's ids: its piece (an unused one split back into the pieces it was merged
// from), else its bytes' pieces, else <unk> (a run of unknowns is one <unk>, as
// SentencePieceProcessor::Encode merges them).
void SentencePiece::emit(const std::string& symbol, std::vector<int64_t>& out,
                         bool& after_unknown) const {
  const auto it = mergeable_.find(symbol);
  if (it != mergeable_.end() && pieces_[static_cast<size_t>(it->second)].type != Type::unused) {
    out.push_back(it->second);
    after_unknown = false;
    return;
  }
  if (it != mergeable_.end()) {
    // An unused piece: its halves, found again the way they were merged (left to right).
    for (size_t cut = 1; cut < symbol.size(); ++cut) {
      const auto a = mergeable_.find(symbol.substr(0, cut)),
                 b = mergeable_.find(symbol.substr(cut));
      if (a != mergeable_.end() && b != mergeable_.end()) {
        emit(symbol.substr(0, cut), out, after_unknown);
        emit(symbol.substr(cut), out, after_unknown);
        return;
      }
    }
  }
  emit_unknown(symbol, out, after_unknown);
}

void SentencePiece::emit_unknown(const std::string& symbol, std::vector<int64_t>& out,
                                 bool& after_unknown) const {
  if (byte_fallback_) {
    for (unsigned char b : symbol) out.push_back(byte_ids_[b]);
    after_unknown = false;
    return;
  }
  if (!after_unknown) out.push_back(unk_);
  after_unknown = true;
}

std::string SentencePiece::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  bool first = true;
  for (int64_t id : ids) {
    check_id(id, vocab_size(), path_);
    const Piece& p = pieces_[static_cast<size_t>(id)];
    if (p.type == Type::control) continue;
    std::string text;
    if (p.type == Type::byte) {
      unsigned value = 0;
      std::sscanf(p.text.c_str(), "<0x%2X>", &value);
      text = std::string(1, static_cast<char>(value));
    } else if (p.type == Type::unknown) {
      text = unk_surface_;
    } else {
      for (size_t at = 0; at < p.text.size();) {
        if (p.text.compare(at, 3, kSpace) == 0) {
          text += ' ';
          at += 3;
        } else {
          text += p.text[at++];
        }
      }
    }
    // The dummy prefix's space goes, as sentencepiece's decoder drops it.
    if (first && add_dummy_prefix_ && !text.empty() && text.front() == ' ') text.erase(0, 1);
    first = false;
    bytes += text;
  }
  return replace_invalid_utf8(bytes);
}

std::string SentencePiece::piece(int64_t id) const {
  check_id(id, vocab_size(), path_);
  return pieces_[static_cast<size_t>(id)].text;
}

}  // namespace blocks::text
