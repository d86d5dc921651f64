#include "framework/config/load.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "framework/io/files.h"

namespace blocks::config {

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return i;
    // Overlong forms and surrogates are invalid too.
    if (len == 2 && c < 0xc2) return i;
    if (len == 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) return i;
    }
    if (len == 4) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xf0 && c1 < 0x90) || c > 0xf4 || (c == 0xf4 && c1 >= 0x90)) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

namespace {

// Line and column (1-based) of byte offsets, counting columns in bytes like yaml-cpp does.
class LineIndex {
 public:
  explicit LineIndex(std::string_view text) {
    starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n') starts_.push_back(i + 1);
  }
  Mark mark(const std::shared_ptr<const std::string>& file, size_t offset) const {
    auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - starts_.begin());
    return {file, static_cast<int>(line), static_cast<int>(offset - starts_[line - 1] + 1)};
  }

 private:
  std::vector<size_t> starts_;
};

struct LimitExceeded {
  Mark mark;
  std::string message;
};

std::string limit_text(const char* what, size_t limit) {
  return std::string(what) + " (the limit is " + std::to_string(limit) + ")";
}

bool check_text(std::string_view text, const std::shared_ptr<const std::string>& file,
                Diagnostics& diagnostics, const LoadLimits& limits) {
  if (text.size() > limits.max_bytes) {
    diagnostics.error({file, 1, 1}, "",
                      "file is " + std::to_string(text.size()) + " bytes; the limit is " +
                          std::to_string(limits.max_bytes));
    return false;
  }
  const size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[bad]));
    diagnostics.error(LineIndex(text).mark(file, bad), "",
                      std::string("invalid UTF-8 (byte ") + hex + "); configs must be UTF-8 text");
    return false;
  }
  return true;
}

// Whether the quoted scalar opening at `open` closes. yaml-cpp 0.7 accepts a quoted scalar
// that is never closed when a line break follows its opening quote, and swallows the rest of
// the file into it.
bool quote_closes(std::string_view text, size_t open) {
  const char quote = text[open];
  for (size_t i = open + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;  // an escaped character, maybe a quote
    } else if (text[i] == quote) {
      if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;  // '' is a quote inside a single-quoted scalar
        continue;
      }
      return true;
    }
  }
  return false;
}

// The keys of a mapping being read, so that a duplicate is found in constant time (a linear
// search per key made a 60,000-key mapping take 14 s).
class MappingKeys {
 public:
  // Appends the entry to `map`, or reports a duplicate key and drops it.
  void add(Node& map, std::string key, Mark key_mark, Node value, Diagnostics& diagnostics) {
    auto [it, fresh] = first_.try_emplace(key, key_mark.line);
    if (!fresh) {
      diagnostics.error(key_mark, "",
                        "duplicate key '" + key + "' (first written at line " +
                            std::to_string(it->second) + ")");
      return;
    }
    map.entries.push_back({std::move(key), std::move(key_mark), std::move(value)});
  }
  bool contains(const std::string& key) const { return first_.count(key) != 0; }
  void remember(const std::string& key, int line) { first_.try_emplace(key, line); }

 private:
  std::unordered_map<std::string, int> first_;  // key -> line it was first written at
};

// Builds Nodes from yaml-cpp parser events, so marks, quoting and aliases are seen directly
// and alias expansion is counted as it happens.
class YamlBuilder : public YAML::EventHandler {
 public:
  YamlBuilder(std::string_view text, std::shared_ptr<const std::string> file,
              Diagnostics& diagnostics, const LoadLimits& limits)
      : text_(text), file_(std::move(file)), diagnostics_(diagnostics), limits_(limits) {}

  std::optional<Node> result;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(Node::null(to_mark(mark)), anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw LimitExceeded{to_mark(mark), "alias to an unknown anchor"};
    count(it->second.size(), mark);
    Node copy = it->second;
    copy.mark = to_mark(mark);
    add(std::move(copy), 0);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    // yaml-cpp gives "?" for plain scalars and "!" for quoted ones; a core-schema tag
    // (`!!int 1`) names the type of a plain scalar, `!!str` makes it a string.
    const bool quoted = tag != "?" && tag.rfind("tag:yaml.org,2002:", 0) != 0
                            ? true
                            : tag == "tag:yaml.org,2002:str";
    const auto at = static_cast<size_t>(mark.pos);
    if (quoted && at < text_.size() && (text_[at] == '"' || text_[at] == '\'') &&
        !quote_closes(text_, at)) {
      const std::string quote(1, text_[at]);
      throw LimitExceeded{to_mark(mark), "unterminated quoted string: expected a closing " + quote +
                                             " before the end of the file"};
    }
    if (!quoted && (value == "~" || value == "null" || value == "Null" || value == "NULL")) {
      add(Node::null(to_mark(mark)), anchor);
      return;
    }
    add(Node::scalar(value, quoted, to_mark(mark)), anchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(Node::sequence(to_mark(mark)), anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(Node::mapping(to_mark(mark)), anchor);
  }
  void OnMapEnd() override {
    apply_merge_keys(stack_.back());
    close();
  }

 private:
  struct Frame {
    Node node;
    YAML::anchor_t anchor = 0;
    bool has_key = false;
    std::string key;
    Mark key_mark;
    MappingKeys keys;
  };

  Mark to_mark(const YAML::Mark& m) const { return {file_, m.line + 1, m.column + 1}; }

  void count(size_t n, const YAML::Mark& mark) {
    nodes_ += n;
    if (nodes_ > limits_.max_nodes)
      throw LimitExceeded{
          to_mark(mark),
          limit_text("document expands to too many nodes through aliases", limits_.max_nodes)};
  }

  void open(Node node, YAML::anchor_t anchor) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth)
      throw LimitExceeded{
          node.mark, limit_text("nesting is too deep", static_cast<size_t>(limits_.max_depth))};
    nodes_ += 1;
    stack_.push_back({std::move(node), anchor, false, {}, {}, {}});
  }

  void close() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    // A complete node counts once in `nodes_` already; re-adding it only stores it.
    nodes_ -= 1;
    add(std::move(frame.node), frame.anchor);
  }

  void add(Node node, YAML::anchor_t anchor) {
    nodes_ += 1;
    if (nodes_ > limits_.max_nodes)
      throw LimitExceeded{node.mark, limit_text("document has too many nodes", limits_.max_nodes)};
    if (anchor != 0) anchors_[anchor] = node;
    if (stack_.empty()) {
      result = std::move(node);
      return;
    }
    Frame& top = stack_.back();
    if (top.node.is_sequence()) {
      top.node.items.push_back(std::move(node));
      return;
    }
    if (!top.has_key) {
      if (!node.is_scalar() && !node.is_null())
        throw LimitExceeded{node.mark, "mapping keys must be plain strings"};
      top.has_key = true;
      top.key = node.is_null() ? "" : node.text;
      top.key_mark = node.mark;
      return;
    }
    top.has_key = false;
    top.keys.add(top.node, std::move(top.key), top.key_mark, std::move(node), diagnostics_);
  }

  // YAML merge keys (`<<: *base`): explicit keys win, then earlier merged mappings.
  void apply_merge_keys(Frame& frame) {
    Node& map = frame.node;
    const Node* merge = map.find("<<");
    if (!merge) return;
    Node sources = *merge;
    map.erase("<<");
    std::vector<const Node*> list;
    if (sources.is_sequence())
      for (const auto& s : sources.items) list.push_back(&s);
    else
      list.push_back(&sources);
    for (const Node* src : list) {
      if (!src->is_mapping()) {
        diagnostics_.error(
            src->mark, "",
            "merge key '<<' expects a mapping or a list of mappings, found " + src->describe());
        continue;
      }
      for (const auto& e : src->entries) {
        if (frame.keys.contains(e.key)) continue;
        frame.keys.remember(e.key, e.key_mark.line);
        map.entries.push_back(e);
      }
    }
  }

  std::string_view text_;
  std::shared_ptr<const std::string> file_;
  Diagnostics& diagnostics_;
  const LoadLimits& limits_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Node> anchors_;
  size_t nodes_ = 0;
};

// nlohmann's SAX interface reports no positions, so the input is read through an iterator
// that counts consumed bytes; each event then maps back to the start of its token.
struct CountingIterator {
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  const char* p;
  size_t* consumed;
  const char& operator*() const { return *p; }
  CountingIterator& operator++() {
    ++p;
    ++*consumed;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIterator& o) const { return p == o.p; }
  bool operator!=(const CountingIterator& o) const { return p != o.p; }
};

class JsonBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  JsonBuilder(std::string_view text, std::shared_ptr<const std::string> file,
              Diagnostics& diagnostics, const LoadLimits& limits, const size_t& consumed)
      : text_(text),
        index_(text),
        file_(std::move(file)),
        diagnostics_(diagnostics),
        limits_(limits),
        consumed_(consumed) {}

  std::optional<Node> result;

  bool null() override { return add(Node::null(token_mark(Token::word))); }
  bool boolean(bool v) override {
    return add(Node::scalar(v ? "true" : "false", false, token_mark(Token::word)));
  }
  bool number_integer(number_integer_t v) override {
    return add(Node::scalar(std::to_string(v), false, token_mark(Token::number)));
  }
  bool number_unsigned(number_unsigned_t v) override {
    return add(Node::scalar(std::to_string(v), false, token_mark(Token::number)));
  }
  bool number_float(number_float_t, const string_t& raw) override {
    return add(Node::scalar(raw, false, token_mark(Token::number)));
  }
  bool string(string_t& v) override {
    return add(Node::scalar(v, true, token_mark(Token::string)));
  }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override { return open(Node::mapping(token_mark(Token::single))); }
  bool key(string_t& k) override {
    Frame& top = stack_.back();
    top.key = k;
    top.key_mark = token_mark(Token::string);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Node::sequence(token_mark(Token::single))); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..."
    const size_t colon = what.find(": ", what.find("parse error"));
    if (colon != std::string::npos) what = what.substr(colon + 2);
    diagnostics_.error(index_.mark(file_, position == 0 ? 0 : position - 1), "", what);
    return false;
  }

 private:
  enum class Token { single, string, number, word };
  struct Frame {
    Node node;
    std::string key;
    Mark key_mark;
    MappingKeys keys;
  };

  Mark token_mark(Token token) const {
    size_t end = consumed_;  // one past the last byte read
    if (end == 0) return index_.mark(file_, 0);
    size_t p = end - 1;
    switch (token) {
      case Token::single:
        break;
      case Token::string:
        while (p > 0) {
          --p;
          if (text_[p] != '"') continue;
          size_t slashes = 0;
          while (p >= slashes + 1 && text_[p - slashes - 1] == '\\') ++slashes;
          if (slashes % 2 == 0) break;
        }
        break;
      case Token::number:
      case Token::word: {
        auto part = [&](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.';
        };
        if (!part(text_[p]) && p > 0) --p;  // numbers read one byte past their end
        while (p > 0 && part(text_[p - 1])) --p;
        break;
      }
    }
    return index_.mark(file_, p);
  }

  bool open(Node node) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      diagnostics_.error(node.mark, "",
                         limit_text("nesting is too deep", static_cast<size_t>(limits_.max_depth)));
      return false;
    }
    stack_.push_back({std::move(node), {}, {}, {}});
    return true;
  }
  bool close() {
    Node node = std::move(stack_.back().node);
    stack_.pop_back();
    return add(std::move(node));
  }
  bool add(Node node) {
    if (++nodes_ > limits_.max_nodes) {
      diagnostics_.error(node.mark, "",
                         limit_text("document has too many nodes", limits_.max_nodes));
      return false;
    }
    if (stack_.empty()) {
      result = std::move(node);
      return true;
    }
    Frame& top = stack_.back();
    if (top.node.is_sequence()) {
      top.node.items.push_back(std::move(node));
    } else {
      top.keys.add(top.node, top.key, top.key_mark, std::move(node), diagnostics_);
    }
    return true;
  }

  std::string_view text_;
  LineIndex index_;
  std::shared_ptr<const std::string> file_;
  Diagnostics& diagnostics_;
  const LoadLimits& limits_;
  const size_t& consumed_;
  std::vector<Frame> stack_;
  size_t nodes_ = 0;
};

}  // namespace

std::optional<Node> load_yaml(std::string_view text, const std::string& file,
                              Diagnostics& diagnostics, const LoadLimits& limits) {
  auto name = source_name(file);
  if (!check_text(text, name, diagnostics, limits)) return std::nullopt;
  std::istringstream in{std::string(text)};
  YamlBuilder builder(text, name, diagnostics, limits);
  try {
    YAML::Parser parser(in);
    if (!parser.HandleNextDocument(builder)) return Node::mapping({name, 1, 1});
    YamlBuilder rest(text, name, diagnostics, limits);
    if (parser.HandleNextDocument(rest)) {
      diagnostics.error(rest.result ? rest.result->mark : Mark{name, 1, 1}, "",
                        "a config file holds one YAML document; found a second");
      return std::nullopt;
    }
  } catch (const LimitExceeded& e) {
    diagnostics.error(e.mark, "", e.message);
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    diagnostics.error({name, e.mark.line + 1, e.mark.column + 1}, "", e.msg);
    return std::nullopt;
  }
  return std::move(builder.result);
}

std::optional<Node> load_json(std::string_view text, const std::string& file,
                              Diagnostics& diagnostics, const LoadLimits& limits) {
  auto name = source_name(file);
  if (!check_text(text, name, diagnostics, limits)) return std::nullopt;
  size_t consumed = 0;
  JsonBuilder builder(text, name, diagnostics, limits, consumed);
  CountingIterator first{text.data(), &consumed};
  CountingIterator last{text.data() + text.size(), &consumed};
  const size_t before = diagnostics.size();
  const bool ok = nlohmann::json::sax_parse(first, last, &builder);
  if (!ok || diagnostics.size() != before) return std::nullopt;
  return std::move(builder.result);
}

std::optional<Node> load_file(const std::string& path, Diagnostics& diagnostics,
                              const LoadLimits& limits) {
  // A FIFO or a device would block or read forever ("Operation not supported" before).
  try {
    io::check_input(path);
  } catch (const io::FileError& e) {
    std::string message = e.what();
    if (message.rfind(path + ": ", 0) == 0) message.erase(0, path.size() + 2);
    diagnostics.error({source_name(path), 0, 0}, "", message);
    return std::nullopt;
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    diagnostics.error({source_name(path), 0, 0}, "", "cannot read " + path + ": " + ec.message());
    return std::nullopt;
  }
  if (size > limits.max_bytes) {
    diagnostics.error({source_name(path), 1, 1}, "",
                      "file is " + std::to_string(size) + " bytes; the limit is " +
                          std::to_string(limits.max_bytes));
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  return json ? load_json(text, path, diagnostics, limits)
              : load_yaml(text, path, diagnostics, limits);
}

}  // namespace blocks::config
