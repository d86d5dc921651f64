#define PCRE2_CODE_UNIT_WIDTH 8
#include "framework/text/byte_level_bpe.h"

#include <pcre2.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>

#include "framework/io/files.h"
#include "framework/text/unicode_forms.h"

namespace blocks::text {

namespace {

// GPT-2's pre-tokenizer pattern (encoder.py; tokenizers' ByteLevel with use_regex).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// encoder.py's bytes_to_unicode: printable bytes stand for themselves, the other 68 take the
// code points from 256 on, in byte order. Each entry is the character's UTF-8.
const std::vector<std::string>& byte_chars() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> out(256);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      append_utf8(out[b], printable ? b : next++);
    }
    return out;
  }();
  return table;
}

const std::unordered_map<std::string, uint8_t>& char_bytes() {
  static const std::unordered_map<std::string, uint8_t> table = [] {
    std::unordered_map<std::string, uint8_t> out;
    for (int b = 0; b < 256; ++b) out[byte_chars()[b]] = static_cast<uint8_t>(b);
    return out;
  }();
  return table;
}

// The length of the UTF-8 character starting with `lead`.
size_t char_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

}  // namespace

// A compiled pre-tokenizer pattern and the pieces it cuts a span into: every match and, between
// matches, what no match took (tokenizers' Split with behavior Isolated).
struct ByteLevelBpe::Regex {
  std::shared_ptr<pcre2_code> code;
  std::string text;

  Regex(const std::string& pattern, const std::string& file) : text(pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* c =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
    if (!c) {
      PCRE2_UCHAR buffer[256];
      pcre2_get_error_message(error, buffer, sizeof buffer);
      throw TokenizerError(file + ": the pre-tokenizer's regex `" + pattern +
                           "` does not compile (" + reinterpret_cast<const char*>(buffer) +
                           " at offset " + std::to_string(offset) + ")");
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);  // a speed-up where available; not required
    code = std::shared_ptr<pcre2_code>(c, pcre2_code_free);
  }

  std::vector<std::string_view> split(std::string_view span) const {
    std::vector<std::string_view> out;
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
        pcre2_match_data_create_from_pattern(code.get(), nullptr), pcre2_match_data_free);
    size_t at = 0, gap = 0;
    while (at < span.size()) {
      const int rc = pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(span.data()), span.size(),
                                 at, PCRE2_NO_UTF_CHECK, data.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0)
        throw TokenizerError("the pre-tokenizer's regex failed (PCRE2 " + std::to_string(rc) + ")");
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
      const size_t begin = ovector[0], end = ovector[1];
      if (begin > gap) out.push_back(span.substr(gap, begin - gap));
      if (end > begin) {
        out.push_back(span.substr(begin, end - begin));
        at = gap = end;
      } else {
        // An empty match: step over one character, which stays in the gap.
        at = begin + char_length(static_cast<unsigned char>(span[begin]));
      }
    }
    if (gap < span.size()) out.push_back(span.substr(gap));
    return out;
  }
};

ByteLevelBpe::~ByteLevelBpe() = default;

ByteLevelBpe::ByteLevelBpe(const std::string& path) : path_(path) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(io::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw TokenizerError(path + ": not JSON: " + e.what());
  }
  auto fail = [&](const std::string& what) { throw TokenizerError(path + ": " + what); };
  if (!json.is_object() || !json.contains("model") || !json["model"].is_object())
    fail("no `model` object (a tokenizer.json has one)");
  const auto& model = json["model"];
  const std::string type = model.value("type", "");
  if (type != "BPE") fail("model type '" + type + "': blocks reads byte-level BPE models only");
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("model.vocab is not an object");
  int64_t size = 0;
  for (const auto& [piece, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0)
      fail("model.vocab['" + piece + "'] is not an id");
    vocab_[piece] = id.get<int64_t>();
    size = std::max(size, id.get<int64_t>() + 1);
  }
  if (json.contains("added_tokens") && json["added_tokens"].is_array())
    for (const auto& t : json["added_tokens"]) {
      const int64_t id = t.value("id", int64_t{-1});
      const std::string content = t.value("content", "");
      if (id < 0 || content.empty()) fail("an added token without id or content");
      added_.emplace_back(content, id);
      size = std::max(size, id + 1);
    }
  pieces_.assign(static_cast<size_t>(size), std::string());
  is_added_.assign(static_cast<size_t>(size), false);
  for (const auto& [piece, id] : vocab_) pieces_[static_cast<size_t>(id)] = piece;
  for (const auto& [content, id] : added_) {
    pieces_[static_cast<size_t>(id)] = content;
    is_added_[static_cast<size_t>(id)] = true;
  }
  std::stable_sort(added_.begin(), added_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  // Merges: "a b" (tokenizers before 0.20) or ["a", "b"].
  if (model.contains("merges") && model["merges"].is_array()) {
    int64_t rank = 0;
    for (const auto& m : model["merges"]) {
      std::string first, second;
      if (m.is_string()) {
        const std::string text = m.get<std::string>();
        const size_t space = text.find(' ');
        if (space == std::string::npos) fail("merge '" + text + "' is not two pieces");
        first = text.substr(0, space), second = text.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        first = m[0].get<std::string>(), second = m[1].get<std::string>();
      } else {
        fail("merge " + m.dump() + " is neither \"a b\" nor [a, b]");
      }
      if (!vocab_.count(first + second))
        fail("merge '" + first + " " + second + "' makes '" + first + second +
             "', which the vocabulary lacks");
      ranks_.emplace(first + " " + second, rank++);
    }
  }
  for (const auto& c : byte_chars())
    if (!vocab_.count(c))
      fail("the vocabulary lacks the byte character '" + c + "': not byte-level");

  // Normalizers: a Unicode form (Qwen2's NFC), or a Sequence of them.
  if (json.contains("normalizer") && !json["normalizer"].is_null()) {
    const auto& n = json["normalizer"];
    const std::string type = n.value("type", std::string("?"));
    std::vector<nlohmann::json> steps;
    if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array())
      steps.assign(n["normalizers"].begin(), n["normalizers"].end());
    else
      steps.push_back(n);
    for (const auto& step : steps) {
      UnicodeForm form;
      const std::string name = step.is_object() ? step.value("type", std::string("?")) : "?";
      if (!parse_unicode_form(name, &form))
        fail("normalizer '" + name +
             "': blocks' byte-level BPE computes NFC, NFD, NFKC and "
             "NFKD (Qwen2's NFC), or none (GPT-2, Llama 3)");
      forms_.push_back(form);
    }
  }
  // Pre-tokenizer: ByteLevel, or Sequence[Split(regex, Isolated), ByteLevel(use_regex: false)].
  const auto& pre = json.contains("pre_tokenizer") ? json["pre_tokenizer"] : nlohmann::json();
  auto byte_level = [&](const nlohmann::json& p, bool regex_allowed) {
    add_prefix_space_ = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) {
      if (!regex_allowed) fail("a ByteLevel pre-tokenizer with its regex after a Split");
      regex_ = std::make_unique<Regex>(kGpt2Pattern, path);
    }
  };
  if (pre.is_object() && pre.value("type", "") == "ByteLevel") {
    byte_level(pre, true);
  } else if (pre.is_object() && pre.value("type", "") == "Sequence" &&
             pre.contains("pretokenizers") && pre["pretokenizers"].size() == 2 &&
             pre["pretokenizers"][0].value("type", "") == "Split" &&
             pre["pretokenizers"][1].value("type", "") == "ByteLevel") {
    const auto& split = pre["pretokenizers"][0];
    if (split.value("behavior", "") != "Isolated" || split.value("invert", false))
      fail("a Split pre-tokenizer other than behavior Isolated, invert false");
    const auto& pattern = split["pattern"];
    if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string())
      fail("a Split pre-tokenizer without a Regex pattern");
    regex_ = std::make_unique<Regex>(pattern["Regex"].get<std::string>(), path);
    byte_level(pre["pretokenizers"][1], false);
  } else {
    fail("pre-tokenizer " + (pre.is_null() ? std::string("null") : pre.dump()) +
         ": blocks computes ByteLevel, or Split (Isolated) then ByteLevel");
  }
  // BOS and EOS: as tokenizer_config.json beside the file names them (transformers reads them
  // there), else the names Llama 3 and GPT-2 give them.
  auto id_of = [&](const std::string& content) -> std::optional<int64_t> {
    for (const auto& [text, id] : added_)
      if (text == content) return id;
    if (auto it = vocab_.find(content); it != vocab_.end()) return it->second;
    return std::nullopt;
  };
  const std::filesystem::path config =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config, ec)) {
    nlohmann::json c;
    try {
      c = nlohmann::json::parse(io::read_file(config.string()));
    } catch (const nlohmann::json::exception& e) {
      throw TokenizerError(config.string() + ": not JSON: " + e.what());
    }
    auto token = [&](const char* key) -> std::optional<int64_t> {
      if (!c.contains(key)) return std::nullopt;
      const auto& v = c[key];
      const std::string content = v.is_string() ? v.get<std::string>()
                                  : v.is_object() && v.contains("content")
                                      ? v["content"].get<std::string>()
                                      : std::string();
      if (content.empty()) return std::nullopt;
      auto id = id_of(content);
      if (!id)
        throw TokenizerError(config.string() + ": " + key + " '" + content + "' is not in " + path);
      return id;
    };
    bos = token("bos_token");
    eos = token("eos_token");
  } else {
    bos = id_of("<|begin_of_text|>");
    eos = id_of("<|end_of_text|>");
    if (!eos) eos = id_of("<|endoftext|>");
  }
}

std::vector<int64_t> ByteLevelBpe::encode(std::string_view text) const {
  check_utf8(text);
  std::vector<int64_t> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    // The first added token at or after `begin` (the longest at one position).
    size_t found = std::string_view::npos;
    const std::pair<std::string, int64_t>* which = nullptr;
    for (const auto& entry : added_) {
      const size_t at = text.find(entry.first, begin);
      if (at < found) found = at, which = &entry;
    }
    const size_t end = which ? found : text.size();
    if (end > begin) encode_span(text.substr(begin, end - begin), out);
    if (!which) break;
    out.push_back(which->second);
    begin = found + which->first.size();
  }
  return out;
}

void ByteLevelBpe::encode_span(std::string_view span, std::vector<int64_t>& out) const {
  std::string normalized;
  if (!forms_.empty()) {
    normalized = std::string(span);
    for (const UnicodeForm form : forms_) normalized = normalize(normalized, form);
    span = normalized;
    if (span.empty()) return;
  }
  std::string prefixed;
  if (add_prefix_space_ && span.front() != ' ') {
    prefixed = " " + std::string(span);
    span = prefixed;
  }
  if (!regex_) {
    encode_piece(span, out);
    return;
  }
  for (const auto piece : regex_->split(span)) encode_piece(piece, out);
}

void ByteLevelBpe::encode_piece(std::string_view piece, std::vector<int64_t>& out) const {
  const std::string key(piece);
  CacheShard& shard = cache_[std::hash<std::string>{}(key) % kCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (auto it = shard.pieces.find(key); it != shard.pieces.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<std::string> word;
  word.reserve(piece.size());
  for (unsigned char b : piece) word.push_back(byte_chars()[b]);
  // encoder.py's bpe(): merge the lowest-ranked adjacent pair, every occurrence left to right,
  // until no adjacent pair has a rank.
  while (word.size() > 1) {
    int64_t best = std::numeric_limits<int64_t>::max();
    std::string best_first, best_second;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find(word[i] + " " + word[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        best_first = word[i], best_second = word[i + 1];
      }
    }
    if (best == std::numeric_limits<int64_t>::max()) break;
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size(); ++i) {
      if (i + 1 < word.size() && word[i] == best_first && word[i + 1] == best_second) {
        merged.push_back(best_first + best_second);
        ++i;
      } else {
        merged.push_back(word[i]);
      }
    }
    word = std::move(merged);
  }
  std::vector<int64_t> ids;
  ids.reserve(word.size());
  for (const auto& symbol : word) {
    auto it = vocab_.find(symbol);
    if (it == vocab_.end())
      throw TokenizerError(path_ + ": the merges make '" + symbol +
                           "', which the vocabulary lacks");
    ids.push_back(it->second);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.pieces.size() < 100000 / kCacheShards) shard.pieces.emplace(key, std::move(ids));
}

std::string ByteLevelBpe::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (int64_t id : ids) {
    check_id(id, vocab_size(), path_);
    const std::string& p = pieces_[static_cast<size_t>(id)];
    if (is_added_[static_cast<size_t>(id)]) {
      bytes += p;
      continue;
    }
    for (size_t i = 0; i < p.size();) {
      const size_t n = char_length(static_cast<unsigned char>(p[i]));
      auto it = char_bytes().find(p.substr(i, n));
      if (it == char_bytes().end())
        throw TokenizerError(path_ + ": piece '" + p + "' (id " + std::to_string(id) +
                             ") holds a character that stands for no byte");
      bytes += static_cast<char>(it->second);
      i += n;
    }
  }
  return replace_invalid_utf8(bytes);
}

std::vector<std::string> ByteLevelBpe::added_tokens() const {
  std::vector<std::string> out;
  for (const auto& [content, id] : added_) out.push_back(content);
  return out;
}

std::string ByteLevelBpe::piece(int64_t id) const {
  check_id(id, vocab_size(), path_);
  return pieces_[static_cast<size_t>(id)];
}

}  // namespace blocks::text
