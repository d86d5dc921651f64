// Every config in configs/ validates, names the schema on its first line, and resolves to a
// fixed point: resolving the resolved output gives the same text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"

namespace {

namespace fs = std::filesystem;
using namespace blocks::config;

std::vector<std::string> configs() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(BLOCKS_SOURCE_DIR "/configs"))
    if (e.path().extension() == ".yaml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Configs, ZooIsThere) {
  std::vector<std::string> names;
  for (const auto& c : configs()) names.push_back(fs::path(c).stem().string());
  for (const char* required : {"gpt2", "llama3-8b", "llama3-70b", "mistral-7b", "mixtral-8x7b"})
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
}

TEST(Configs, FirstLineNamesTheSchema) {
  for (const auto& c : configs()) {
    std::ifstream in(c);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "# yaml-language-server: $schema=../schemas/blocks.schema.json") << c;
  }
}

TEST(Configs, ValidateAndResolveToAFixedPoint) {
  for (const auto& c : configs()) {
    SCOPED_TRACE(c);
    Diagnostics d1;
    auto first = load_document(c, blocks::registry(), d1);
    ASSERT_TRUE(first) << d1.format();
    const std::string yaml = to_yaml(first->dump());
    Diagnostics d2;
    auto again = load_document(c, blocks::registry(), d2);
    ASSERT_TRUE(again) << d2.format();
    EXPECT_EQ(to_yaml(again->dump()), yaml) << "resolving twice differs";
    Diagnostics d3;
    auto re = load_document_text(yaml, c + " (resolved)", blocks::registry(), d3);
    ASSERT_TRUE(re) << d3.format();
    EXPECT_EQ(to_yaml(re->dump()), yaml) << "resolving the resolved config changes it";
  }
}

}  // namespace
