#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Mlp, IntermediateSizeDefaultsToFourTimesHidden) {
  ModelText m;
  m.mlp = "{type: mlp}";
  const auto mlp = block_of(resolved(m.text()))["mlp"];
  EXPECT_EQ(mlp["intermediate_size"], 256);
  EXPECT_EQ(mlp["activation"], "gelu");
  EXPECT_EQ(mlp["up"]["weight_initialization"]["type"], "normal");
  EXPECT_EQ(mlp["down"]["weight_initialization"]["type"], "scaled_normal");
}

TEST(Mlp, GatedNeedsItsWidth) {
  ModelText m;
  m.mlp = "{type: gated, activation: gelu}";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:12:12: error: model.decoder.block.mlp: missing required field "
            "'intermediate_size'\n");
}

}  // namespace
