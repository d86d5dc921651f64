// The committed schema and reference docs must equal what blockc generates from the type
// declarations today. Regenerate with `cmake --build build --target generate`.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "blocks/registry.h"
#include "framework/config/schema.h"

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Generated, SchemaIsCurrent) {
  const std::string expected = blocks::config::json_schema(blocks::registry()).dump(2) + "\n";
  EXPECT_TRUE(read(BLOCKS_SOURCE_DIR "/schemas/blocks.schema.json") == expected)
      << "schemas/blocks.schema.json is stale: run `cmake --build build --target generate`";
}

TEST(Generated, ReferenceIsCurrent) {
  const std::string expected = blocks::config::reference_markdown(blocks::registry());
  EXPECT_TRUE(read(BLOCKS_SOURCE_DIR "/docs/reference.md") == expected)
      << "docs/reference.md is stale: run `cmake --build build --target generate`";
}

TEST(Generated, SchemaDefinesEveryRegisteredType) {
  const auto schema = blocks::config::json_schema(blocks::registry());
  for (const auto* t : blocks::registry().all_types())
    EXPECT_TRUE(schema["$defs"].contains(t->kind + "." + t->name)) << t->kind << "." << t->name;
}

TEST(Generated, ReferenceDocumentsEveryField) {
  const std::string doc = blocks::config::reference_markdown(blocks::registry());
  for (const auto* t : blocks::registry().all_types())
    for (const auto& f : t->fields)
      EXPECT_NE(doc.find("| `" + f.name + "` |"), std::string::npos) << t->name << "." << f.name;
}

}  // namespace
