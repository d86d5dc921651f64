// Loading YAML and JSON into source-marked Nodes: marks, quoting, anchors and merge keys,
// syntax errors, and the limits that turn hostile input into errors.
#include "framework/config/load.h"

#include <gtest/gtest.h>
#include <sys/stat.h>


#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace blocks::config {
namespace {

namespace fs = std::filesystem;

std::string where(const Mark& m) { return std::to_string(m.line) + ":" + std::to_string(m.column); }

std::optional<Node> yaml(std::string_view text, Diagnostics& d, const LoadLimits& limits = {}) {
  return load_yaml(text, "test.yaml", d, limits);
}
std::optional<Node> json(std::string_view text, Diagnostics& d, const LoadLimits& limits = {}) {
  return load_json(text, "test.json", d, limits);
}

using blocks::testing::TempDir;

// --- marks ---

TEST(LoadYaml, MarksLineAndColumnOfEveryNode) {
  Diagnostics d;
  auto n = yaml("a: 1\nb: \"x\"\nc:\n  - 1\n  - [2, 3]\nd: {e: f}\n", d);
  ASSERT_TRUE(n) << d.format();
  EXPECT_TRUE(d.ok());
  ASSERT_TRUE(n->is_mapping());
  EXPECT_EQ(*n->mark.file, "test.yaml");
  EXPECT_EQ(where(n->mark), "1:1");
  ASSERT_EQ(n->entries.size(), 4u);
  EXPECT_EQ(where(n->entries[0].key_mark), "1:1");
  EXPECT_EQ(where(n->find("a")->mark), "1:4");
  EXPECT_EQ(where(n->entries[1].key_mark), "2:1");
  EXPECT_EQ(where(n->find("b")->mark), "2:4");  // the opening quote
  const Node* c = n->find("c");
  ASSERT_TRUE(c->is_sequence());
  EXPECT_EQ(where(c->mark), "4:3");  // the first `-`
  ASSERT_EQ(c->items.size(), 2u);
  EXPECT_EQ(where(c->items[0].mark), "4:5");
  EXPECT_EQ(where(c->items[1].mark), "5:5");
  EXPECT_EQ(where(c->items[1].items[0].mark), "5:6");
  EXPECT_EQ(where(c->items[1].items[1].mark), "5:9");
  const Node* dm = n->find("d");
  EXPECT_EQ(where(dm->mark), "6:4");
  EXPECT_EQ(where(dm->entries[0].key_mark), "6:5");
  EXPECT_EQ(where(dm->find("e")->mark), "6:8");
  EXPECT_EQ(dm->find("e")->text, "f");
}

TEST(LoadJson, MarksLineAndColumnOfEveryNode) {
  Diagnostics d;
  auto n = json("{\n  \"a\": 1,\n  \"b\": [true, null, \"x\"],\n  \"c\": {\"d\": -2.5e3}\n}", d);
  ASSERT_TRUE(n) << d.format();
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(*n->mark.file, "test.json");
  EXPECT_EQ(where(n->mark), "1:1");
  EXPECT_EQ(where(n->entries[0].key_mark), "2:3");
  EXPECT_EQ(where(n->find("a")->mark), "2:8");
  EXPECT_EQ(where(n->entries[1].key_mark), "3:3");
  const Node* b = n->find("b");
  EXPECT_EQ(where(b->mark), "3:8");
  ASSERT_EQ(b->items.size(), 3u);
  EXPECT_EQ(where(b->items[0].mark), "3:9");
  EXPECT_EQ(where(b->items[1].mark), "3:15");
  EXPECT_EQ(where(b->items[2].mark), "3:21");
  const Node* c = n->find("c");
  EXPECT_EQ(where(c->mark), "4:8");
  EXPECT_EQ(where(c->entries[0].key_mark), "4:9");
  EXPECT_EQ(where(c->find("d")->mark), "4:14");
  EXPECT_EQ(c->find("d")->text, "-2.5e3");  // floats keep their source text
}

TEST(LoadJson, MarksSurviveEscapedQuotesAndNumbersBeforeDelimiters) {
  Diagnostics d;
  auto n = json("{\"a\": \"\\\"x\\\\\", \"b\": 12345,\"c\":[7,88]}", d);
  ASSERT_TRUE(n) << d.format();
  EXPECT_EQ(n->find("a")->text, "\"x\\");
  EXPECT_EQ(where(n->entries[1].key_mark), "1:16");
  EXPECT_EQ(where(n->find("b")->mark), "1:21");
  EXPECT_EQ(where(n->entries[2].key_mark), "1:27");
  const Node* c = n->find("c");
  EXPECT_EQ(where(c->mark), "1:31");
  EXPECT_EQ(where(c->items[0].mark), "1:32");
  EXPECT_EQ(where(c->items[1].mark), "1:34");
  EXPECT_EQ(c->items[1].text, "88");
}

// --- scalars ---

TEST(LoadYaml, QuotedScalarsAreStringsAndPlainNullsAreNull) {
  Diagnostics d;
  auto n = yaml("a: \"5\"\nb: '5'\nc: 5\nd: null\ne: \"null\"\nf: ~\ng:\nh: true\ni: 'true'\n", d);
  ASSERT_TRUE(n) << d.format();
  auto check = [&](const char* key, Node::Kind kind, bool quoted, const char* text) {
    const Node* v = n->find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(v->kind, kind) << key;
    EXPECT_EQ(v->quoted, quoted) << key;
    EXPECT_EQ(v->text, text) << key;
  };
  check("a", Node::Kind::scalar, true, "5");
  check("b", Node::Kind::scalar, true, "5");
  check("c", Node::Kind::scalar, false, "5");
  check("d", Node::Kind::null, false, "");
  check("e", Node::Kind::scalar, true, "null");
  check("f", Node::Kind::null, false, "");
  check("g", Node::Kind::null, false, "");
  check("h", Node::Kind::scalar, false, "true");
  check("i", Node::Kind::scalar, true, "true");
}

TEST(LoadJson, StringsAreQuotedAndLiteralsAreNot) {
  Diagnostics d;
  auto n = json(R"({"a": "5", "b": 5, "c": true, "d": null, "e": "null", "f": 1.50})", d);
  ASSERT_TRUE(n) << d.format();
  EXPECT_TRUE(n->find("a")->quoted);
  EXPECT_FALSE(n->find("b")->quoted);
  EXPECT_EQ(n->find("b")->text, "5");
  EXPECT_FALSE(n->find("c")->quoted);
  EXPECT_EQ(n->find("c")->text, "true");
  EXPECT_TRUE(n->find("d")->is_null());
  EXPECT_TRUE(n->find("e")->is_scalar());
  EXPECT_TRUE(n->find("e")->quoted);
  EXPECT_EQ(n->find("f")->text, "1.50");
}

// --- anchors, aliases, merge keys ---

TEST(LoadYaml, AliasesCopyTheAnchoredNodeAndMarkTheAlias) {
  Diagnostics d;
  auto n = yaml("base: &b {x: 1, y: [2, 3]}\ncopy: *b\nscalar: &s hello\nagain: *s\n", d);
  ASSERT_TRUE(n) << d.format();
  const Node* copy = n->find("copy");
  ASSERT_TRUE(copy->is_mapping());
  EXPECT_EQ(where(copy->mark), "2:7");  // where the alias is written
  EXPECT_EQ(copy->find("x")->text, "1");
  EXPECT_EQ(where(copy->find("x")->mark), "1:14");  // inner nodes: where they are written
  ASSERT_EQ(copy->find("y")->items.size(), 2u);
  EXPECT_EQ(n->find("again")->text, "hello");
  EXPECT_EQ(where(n->find("again")->mark), "4:8");
}

TEST(LoadYaml, MergeKeysAddMissingKeysAndExplicitKeysWin) {
  Diagnostics d;
  auto n = yaml(
      "base: &b {x: 1, y: 2}\n"
      "more: &m {y: 20, z: 30}\n"
      "derived:\n"
      "  <<: *b\n"
      "  y: 3\n"
      "both:\n"
      "  <<: [*m, *b]\n"
      "  w: 0\n",
      d);
  ASSERT_TRUE(n) << d.format();
  EXPECT_TRUE(d.ok());
  const Node* derived = n->find("derived");
  EXPECT_EQ(derived->find("<<"), nullptr);
  ASSERT_EQ(derived->entries.size(), 2u);
  EXPECT_EQ(derived->find("y")->text, "3");
  EXPECT_EQ(derived->find("x")->text, "1");
  const Node* both = n->find("both");
  ASSERT_EQ(both->entries.size(), 4u);
  EXPECT_EQ(both->find("w")->text, "0");
  EXPECT_EQ(both->find("y")->text, "20");  // the earlier mapping in the list wins
  EXPECT_EQ(both->find("z")->text, "30");
  EXPECT_EQ(both->find("x")->text, "1");
}

TEST(LoadYaml, MergeKeyOfANonMappingIsAnError) {
  Diagnostics d;
  yaml("a: &x 1\nb:\n  <<: *x\n  c: 2\nd: {<<: [{e: 1}, 7]}\n", d);
  EXPECT_EQ(d.format(),
            "test.yaml:3:7: error: merge key '<<' expects a mapping or a list of mappings, "
            "found '1'\n"
            "test.yaml:5:18: error: merge key '<<' expects a mapping or a list of mappings, "
            "found '7'\n");
}

TEST(LoadYaml, UnknownAnchorIsAnError) {
  Diagnostics d;
  EXPECT_FALSE(yaml("a: 1\nb: *nope\n", d));
  EXPECT_EQ(d.format(), "test.yaml:2:4: error: the referenced anchor is not defined\n");
}

// --- structural errors ---

TEST(LoadYaml, DuplicateKeysAreErrors) {
  Diagnostics d;
  yaml("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n", d);
  EXPECT_EQ(d.format(),
            "test.yaml:4:3: error: duplicate key 'c' (first written at line 3)\n"
            "test.yaml:5:1: error: duplicate key 'a' (first written at line 1)\n");
}

TEST(LoadJson, DuplicateKeysAreErrors) {
  Diagnostics d;
  EXPECT_FALSE(json("{\"a\": 1,\n \"a\": 2}", d));
  EXPECT_EQ(d.format(), "test.json:2:2: error: duplicate key 'a' (first written at line 1)\n");
}

TEST(LoadYaml, ASecondDocumentIsAnError) {
  Diagnostics d;
  EXPECT_FALSE(yaml("a: 1\n---\nb: 2\n", d));
  EXPECT_EQ(d.format(),
            "test.yaml:3:1: error: a config file holds one YAML document; found a second\n");
}

TEST(LoadYaml, AnEmptyFileIsAnEmptyMapping) {
  Diagnostics d;
  auto n = yaml("", d);
  ASSERT_TRUE(n);
  EXPECT_TRUE(d.ok());
  EXPECT_TRUE(n->is_mapping());
  EXPECT_TRUE(n->entries.empty());
}

TEST(LoadYaml, SyntaxErrorsCarryTheirMark) {
  Diagnostics d;
  EXPECT_FALSE(yaml("a: 1\n b: 2\n", d));
  EXPECT_EQ(d.format(), "test.yaml:2:3: error: illegal map value\n");
}

TEST(LoadYaml, TabIndentationIsASyntaxError) {
  Diagnostics d;
  EXPECT_FALSE(yaml("x: 1\n\tb: 2\n", d));
  EXPECT_EQ(d.format(), "test.yaml:2:1: error: illegal tab when looking for indentation\n");
}

TEST(LoadYaml, MappingKeysMustBeScalars) {
  Diagnostics d;
  EXPECT_FALSE(yaml("ok: 1\n[1, 2]: 3\n", d));
  EXPECT_EQ(d.format(), "test.yaml:2:1: error: mapping keys must be plain strings\n");
}

// yaml-cpp 0.7 accepts a quoted string left open before a line break and swallows the rest
// of the file into it; the loader must not.
TEST(LoadYaml, UnterminatedQuotedStringIsAnError) {
  for (const char* text : {"a: 1\nb: \"abc\nc: 2\n", "a: 1\nb: \"abc\n", "a: 1\nb: \"a\\\"\n"}) {
    Diagnostics d;
    EXPECT_FALSE(yaml(text, d)) << text;
    EXPECT_EQ(d.format(),
              "test.yaml:2:4: error: unterminated quoted string: expected a closing \" before "
              "the end of the file\n")
        << text;
  }
  // Without a line break yaml-cpp reports it itself, at the end of the file.
  Diagnostics eof;
  EXPECT_FALSE(yaml("a: 1\nb: \"abc", eof));
  EXPECT_EQ(eof.format(), "test.yaml:2:8: error: illegal EOF in scalar\n");
  Diagnostics d;
  EXPECT_FALSE(yaml("a: 'it''s\n", d));
  EXPECT_EQ(d.format(),
            "test.yaml:1:4: error: unterminated quoted string: expected a closing ' before the "
            "end of the file\n");
}

TEST(LoadYaml, ClosedQuotedStringsWithEscapedQuotesLoad) {
  Diagnostics d;
  auto n = yaml("a: \"say \\\"hi\\\"\"\nb: 'it''s'\nc: \"multi\n  line\"\n", d);
  ASSERT_TRUE(n) << d.format();
  EXPECT_EQ(n->find("a")->text, "say \"hi\"");
  EXPECT_EQ(n->find("b")->text, "it's");
  EXPECT_EQ(n->find("c")->text, "multi line");
}

TEST(LoadJson, SyntaxErrorsCarryTheirMark) {
  {
    Diagnostics d;
    EXPECT_FALSE(json("{\"a\": 1,}", d));
    EXPECT_EQ(d.format(),
              "test.json:1:9: error: syntax error while parsing object key - unexpected '}'; "
              "expected string literal\n");
  }
  {
    Diagnostics d;
    EXPECT_FALSE(json("{\n  \"a\" 1\n}", d));
    EXPECT_EQ(d.format(),
              "test.json:2:7: error: syntax error while parsing object separator - unexpected "
              "number literal; expected ':'\n");
  }
  {
    Diagnostics d;
    EXPECT_FALSE(json("{\"a\": 1}\n{\"b\": 2}", d));
    EXPECT_EQ(d.format(),
              "test.json:2:1: error: syntax error while parsing value - unexpected '{'; "
              "expected end of input\n");
  }
}

// --- limits ---

std::string alias_bomb() {
  std::string text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 10; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) text += (k ? ", *a" : "*a") + std::to_string(i - 1);
    text += "]\n";
  }
  return text;
}

TEST(LoadLimits, AliasBombStopsAtTheNodeLimitQuickly) {
  Diagnostics d;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(yaml(alias_bomb(), d));
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // a5 holds 1,111,111 nodes; the first alias of a6 passes 2,000,000.
  EXPECT_EQ(d.format(),
            "test.yaml:7:10: error: document expands to too many nodes through aliases (the "
            "limit is 2000000)\n");
  EXPECT_LT(seconds, 5.0);
}

TEST(LoadLimits, NodeLimitWithoutAliases) {
  Diagnostics d;
  LoadLimits limits;
  limits.max_nodes = 5;
  EXPECT_FALSE(yaml("[1, 2, 3, 4, 5, 6]", d, limits));
  EXPECT_EQ(d.format(), "test.yaml:1:14: error: document has too many nodes (the limit is 5)\n");
}

TEST(LoadLimits, DeepYamlFlowSequencesStopAtTheDepthLimit) {
  Diagnostics d;
  const std::string text = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_FALSE(yaml(text, d));
  EXPECT_EQ(d.format(), "test.yaml:1:201: error: nesting is too deep (the limit is 200)\n");
}

TEST(LoadLimits, DeepYamlFlowMappingsStopAtTheDepthLimit) {
  Diagnostics d;
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "{a: ";
  text += "1" + std::string(10000, '}');
  EXPECT_FALSE(yaml(text, d));
  EXPECT_EQ(d.format(), "test.yaml:1:801: error: nesting is too deep (the limit is 200)\n");
}

TEST(LoadLimits, DeepYamlBlockMappingsStopAtTheDepthLimit) {
  Diagnostics d;
  std::string text;
  for (int i = 0; i < 1000; ++i) text += std::string(static_cast<size_t>(i), ' ') + "a:\n";
  EXPECT_FALSE(yaml(text, d));
  EXPECT_EQ(d.format(), "test.yaml:201:201: error: nesting is too deep (the limit is 200)\n");
}

TEST(LoadLimits, DeepJsonArraysStopAtTheDepthLimit) {
  Diagnostics d;
  const std::string text = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_FALSE(json(text, d));
  EXPECT_EQ(d.format(), "test.json:1:201: error: nesting is too deep (the limit is 200)\n");
}

TEST(LoadLimits, DeepJsonObjectsStopAtTheDepthLimit) {
  Diagnostics d;
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "{\"a\": ";
  text += "1" + std::string(10000, '}');
  EXPECT_FALSE(json(text, d));
  EXPECT_EQ(d.format(), "test.json:1:1201: error: nesting is too deep (the limit is 200)\n");
}

TEST(LoadLimits, NestingAtTheLimitLoads) {
  Diagnostics d;
  const std::string text = std::string(200, '[') + std::string(200, ']');
  EXPECT_TRUE(yaml(text, d)) << d.format();
  EXPECT_TRUE(json(text, d)) << d.format();
}

TEST(LoadLimits, TextAboveTheByteLimitIsRejected) {
  LoadLimits limits;
  limits.max_bytes = 4;
  Diagnostics d;
  EXPECT_FALSE(yaml("a: 1\n", d, limits));
  EXPECT_FALSE(json("[1, 2]", d, limits));
  EXPECT_EQ(d.format(),
            "test.json:1:1: error: file is 6 bytes; the limit is 4\n"
            "test.yaml:1:1: error: file is 5 bytes; the limit is 4\n");
  Diagnostics at_limit;
  EXPECT_TRUE(yaml("a: 1", at_limit, limits)) << at_limit.format();
}

TEST(LoadLimits, FileAboveSixteenMebibytesIsRejectedBeforeReading) {
  TempDir dir;
  const std::string path = (dir.path() / "huge.yaml").string();
  {
    std::ofstream out(path, std::ios::binary);
    const std::string line = "# padding padding padding padding padding padding padding pad\n";
    size_t written = 0;
    while (written <= (16u << 20)) {
      out << line;
      written += line.size();
    }
  }
  const auto size = fs::file_size(path);
  ASSERT_GT(size, 16u << 20);
  Diagnostics d;
  EXPECT_FALSE(load_file(path, d));
  EXPECT_EQ(d.format(), path + ":1:1: error: file is " + std::to_string(size) +
                            " bytes; the limit is 16777216\n");
}

TEST(LoadLimits, InvalidUtf8IsRejectedWithItsPosition) {
  {
    Diagnostics d;
    EXPECT_FALSE(yaml("a: 1\nb: \"x\xffy\"\n", d));
    EXPECT_EQ(d.format(),
              "test.yaml:2:6: error: invalid UTF-8 (byte 0xff); configs must be UTF-8 text\n");
  }
  {
    Diagnostics d;
    EXPECT_FALSE(json("{\"a\":\n  \"\xc3\x28\"}", d));
    EXPECT_EQ(d.format(),
              "test.json:2:4: error: invalid UTF-8 (byte 0xc3); configs must be UTF-8 text\n");
  }
  {
    // A UTF-16 surrogate encoded as UTF-8, after valid multi-byte text on the same line.
    Diagnostics d;
    EXPECT_FALSE(yaml("name: \xc3\xa9t\xc3\xa9 \xed\xa0\x80\n", d));
    EXPECT_EQ(d.format(),
              "test.yaml:1:13: error: invalid UTF-8 (byte 0xed); configs must be UTF-8 text\n");
  }
}

TEST(FindInvalidUtf8, AcceptsValidTextAndFindsEachKindOfBadSequence) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e"),
            std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);                 // stray continuation byte
  EXPECT_EQ(find_invalid_utf8("ab\xe2\x82"), 2u);             // truncated at the end
  EXPECT_EQ(find_invalid_utf8("a\xe2\x28\xa1"), 1u);          // bad continuation
  EXPECT_EQ(find_invalid_utf8("a\xc0\x80"), 1u);              // overlong NUL
  EXPECT_EQ(find_invalid_utf8("a\xe0\x80\xaf"), 1u);          // overlong 3-byte
  EXPECT_EQ(find_invalid_utf8("a\xf0\x80\x80\xaf"), 1u);      // overlong 4-byte
  EXPECT_EQ(find_invalid_utf8("a\xed\xa0\x80"), 1u);          // surrogate
  EXPECT_EQ(find_invalid_utf8("a\xf4\x90\x80\x80"), 1u);      // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("a\xf8\x88\x80\x80\x80"), 1u);  // 5-byte form
}

// --- files ---

TEST(LoadFile, PicksTheFormatByExtension) {
  TempDir dir;
  Diagnostics d;
  auto j = load_file(dir.write("c.json", "{\"a\": \"5\"}"), d);
  auto y = load_file(dir.write("c.yaml", "a: 5\n"), d);
  ASSERT_TRUE(j && y) << d.format();
  EXPECT_TRUE(j->find("a")->quoted);
  EXPECT_FALSE(y->find("a")->quoted);
  EXPECT_EQ(*y->mark.file, (dir.path() / "c.yaml").string());
  // YAML syntax in a .json file is a JSON error.
  EXPECT_FALSE(load_file(dir.write("bad.json", "a: 5\n"), d));
  EXPECT_EQ(d.format(), (dir.path() / "bad.json").string() +
                            ":1:1: error: syntax error while parsing value - invalid literal; "
                            "last read: 'a'\n");
}

TEST(LoadFile, AFifoIsRefusedBeforeReading) {
  TempDir dir;
  const std::string path = (dir.path() / "fifo.yaml").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  Diagnostics d;
  EXPECT_FALSE(load_file(path, d));  // before: blocked, or "Operation not supported"
  EXPECT_EQ(d.format(), path + ": error: is a FIFO; inputs are regular files\n");
}

// A core-schema tag names a plain scalar's type: `!!int 1` is the integer 1.
TEST(LoadYaml, CoreSchemaTagsKeepScalarsPlain) {
  Diagnostics d;
  auto node = load_yaml("a: !!int 1\nb: !!str 2\nc: '3'\n", "t.yaml", d);
  ASSERT_TRUE(node) << d.format();
  EXPECT_FALSE(node->find("a")->quoted);
  EXPECT_TRUE(node->find("b")->quoted);
  EXPECT_TRUE(node->find("c")->quoted);
}

// Duplicate keys are found through an index: 500,000 keys took minutes with a linear search.
TEST(LoadYaml, DuplicateKeyChecksAreLinear) {
  std::string yaml, json = "{";
  for (int i = 0; i < 500'000; ++i) {
    yaml += "k" + std::to_string(i) + ": 1\n";
    json += std::string(i ? "," : "") + "\"k" + std::to_string(i) + "\": 1";
  }
  yaml += "k7: 2\n";
  json += ", \"k7\": 2}";
  const auto start = std::chrono::steady_clock::now();
  Diagnostics y, j;
  auto from_yaml = load_yaml(yaml, "t.yaml", y);
  auto from_json = load_json(json, "t.json", j);
  // ~2 s alone on the 2-core CI machine, ~5 s beside other tests; quadratic was minutes.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  ASSERT_TRUE(from_yaml);
  EXPECT_EQ(from_yaml->entries.size(), 500'000u);
  EXPECT_EQ(y.format(), "t.yaml:500001:1: error: duplicate key 'k7' (first written at line 8)\n");
  // JSON gives no document once a problem is found, and says which.
  EXPECT_FALSE(from_json);
  ASSERT_EQ(j.items().size(), 1u);
  EXPECT_NE(j.format().find("duplicate key 'k7'"), std::string::npos) << j.format();
}

TEST(LoadFile, MissingFileIsAnError) {
  TempDir dir;
  const std::string path = (dir.path() / "missing.yaml").string();
  Diagnostics d;
  EXPECT_FALSE(load_file(path, d));
  EXPECT_EQ(d.format(), path + ": error: cannot open " + path + ": No such file or directory\n");
}

}  // namespace
}  // namespace blocks::config
