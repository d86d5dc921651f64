// A separate program linking the static libraries, as a user's program would, with its own
// main: every type must be registered (self-registering static initialisers would silently
// vanish here).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "blocks/registry.h"
#include "framework/config/config.h"

namespace {

const std::vector<std::pair<std::string, std::string>> kExpected = {
    {"model", "language_model"},   {"block", "transformer"},
    {"sequence", "fixed"},         {"sequence", "repeat"},
    {"sequence", "pattern"},       {"mixer", "attention"},
    {"mixer", "mamba"},            {"mlp", "mlp"},
    {"mlp", "gated"},              {"mlp", "moe"},
    {"normalization", "layer_norm"}, {"normalization", "rms_norm"},
    {"normalization", "none"},     {"initialization", "fill"},
    {"initialization", "zeros"},   {"initialization", "ones"},
    {"initialization", "normal"},  {"initialization", "uniform"},
    {"initialization", "kaiming"}, {"initialization", "xavier"},
    {"initialization", "scaled_normal"}, {"initialization", "magneto"},
    {"initialization", "s4d_real"}, {"initialization", "mamba_dt"},
    {"rotary", "none"},            {"rotary", "default"},
    {"rotary", "llama3"},          {"rotary", "yarn"},
    {"rotary", "xpos"},
    {"peft", "none"},              {"peft", "lora"}};

TEST(LinkedProgram, FindsEveryType) {
  for (const auto& [kind, type] : kExpected)
    EXPECT_NE(blocks::registry().find(kind, type), nullptr) << kind << " type " << type;
  EXPECT_EQ(blocks::registry().all_types().size(), kExpected.size())
      << "a type was added or removed: update this list";
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
