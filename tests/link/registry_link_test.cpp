// A separate program linking the static libraries, as a user's program would, with its own
// main: every type must be registered (self-registering static initialisers would silently
// vanish here).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "blocks/registry.h"
#include "framework/config/config.h"

namespace {

// Every (kind, type) the committed reference lists as "### `TYPE` (KIND)": blockc writes it from
// the full registry and generated_test fails when it is stale, so no hand list goes out of date.
std::vector<std::pair<std::string, std::string>> documented_types() {
  std::ifstream in(std::string(BLOCKS_SOURCE_DIR) + "/docs/reference.md");
  const std::regex heading(R"(^### `([a-z0-9_]+)` \(([a-z_]+)\)$)");
  std::vector<std::pair<std::string, std::string>> types;
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_match(line, m, heading) && m[2] != "struct") types.emplace_back(m[2], m[1]);
  return types;
}

TEST(LinkedProgram, FindsEveryType) {
  const auto expected = documented_types();
  ASSERT_GE(expected.size(), 31u) << "docs/reference.md lists too few types";
  for (const auto& [kind, type] : expected)
    EXPECT_NE(blocks::registry().find(kind, type), nullptr) << kind << " type " << type;
  EXPECT_EQ(blocks::registry().all_types().size(), expected.size())
      << "the linked registry and docs/reference.md disagree";
}

TEST(LinkedProgram, BlockSlotsTakeSequences) {
  EXPECT_NE(blocks::registry().find("block", "repeat"), nullptr);
  EXPECT_EQ(blocks::registry().find("sequence", "transformer"), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
