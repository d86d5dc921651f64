// Every zoo config resolves to what it resolved to before models were made of models (issue
// 10): tests/fixtures/resolved_before/NAME.json is `blockc resolve configs/NAME.yaml --format
// json` of the commit before scoped resolution. The only differences allowed are fields added
// since, listed here by name; every value the fixture has must be there, the same.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "tests/support/model_text.h"

namespace blocks::testing {
namespace {

// Fields the language gained after the fixtures were written, each with a default that keeps
// the architecture as it was.
const std::set<std::string> kAddedFields = {
    "scale",          // embeddings: multiplies the input embeddings (Gemma), default 1
    "weight_offset",  // rms_norm: y = x / rms * (offset + weight) (Gemma), default 0
    "base",           // magneto: what gamma scales, default xavier (as before)
    "allow_frozen_targets",  // lora: keep adapters that could never train, default false
    "modules_to_save",       // lora: parts that train in full beside the adapters, default none
};

void expect_same(const config::Json& before, const config::Json& now, const std::string& path,
                 std::vector<std::string>& differences) {
  if (before.is_object() && now.is_object()) {
    for (const auto& [key, value] : before.items()) {
      if (!now.contains(key)) {
        differences.push_back(path + "." + key + ": gone");
        continue;
      }
      expect_same(value, now[key], path + "." + key, differences);
    }
    for (const auto& [key, value] : now.items())
      if (!before.contains(key) && !kAddedFields.count(key))
        differences.push_back(path + "." + key + ": new field " + value.dump());
    return;
  }
  if (before.is_array() && now.is_array() && before.size() == now.size()) {
    for (size_t i = 0; i < before.size(); ++i)
      expect_same(before[i], now[i], path + "[" + std::to_string(i) + "]", differences);
    return;
  }
  if (before != now) differences.push_back(path + ": " + before.dump() + " -> " + now.dump());
}

TEST(ZooUnchanged, EveryConfigResolvesAsBefore) {
  namespace fs = std::filesystem;
  size_t checked = 0;
  for (const auto& entry :
       fs::directory_iterator(BLOCKS_SOURCE_DIR "/tests/fixtures/resolved_before")) {
    const std::string name = entry.path().stem().string();
    std::ifstream in(entry.path());
    const config::Json before = config::Json::parse(in);
    std::vector<std::string> differences;
    expect_same(before, zoo(name).dump(), "", differences);
    EXPECT_TRUE(differences.empty()) << name << ":\n" << config::join(differences, "\n");
    ++checked;
  }
  EXPECT_EQ(checked, 9u);  // the zoo when the fixtures were written
}

}  // namespace
}  // namespace blocks::testing
