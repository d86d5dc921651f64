#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Moe, RouterHasNoBiasWhateverTheShortcutSays) {
  ModelText m;
  m.mlp = "{type: moe, experts: 4, intermediate_size: 32, shared_experts: 1}";
  m.model_extra = "  add_linear_biases: true\n";
  const auto moe = block_of(resolved(m.text()))["mlp"];
  EXPECT_EQ(moe["router"]["bias"], false);
  EXPECT_EQ(moe["gate"]["bias"], true);
  EXPECT_EQ(moe["top_k"], 2);
  EXPECT_EQ(moe["shared_intermediate_size"], 32);
  EXPECT_EQ(moe["normalize_top_k"], true);
}

TEST(Moe, CrossFieldRules) {
  ModelText m;
  m.mlp = "{type: moe, experts: 2, top_k: 3, intermediate_size: 32, shared_intermediate_size: 8}";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:12:43: error: model.decoder.block.mlp.top_k: must be <= experts (2), "
            "found 3\n"
            "test.yaml:12:95: error: model.decoder.block.mlp.shared_intermediate_size: is set "
            "but shared_experts is 0\n");
}

}  // namespace
