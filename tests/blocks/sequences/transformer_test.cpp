#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Transformer, PostPlacementAndResidualScale) {
  ModelText m;
  m.block_extra = "      normalization_placement: post\n      residual_scale: 2.0\n";
  const auto b = block_of(resolved(m.text()));
  EXPECT_EQ(b["normalization_placement"], "post");
  EXPECT_DOUBLE_EQ(b["residual_scale"].get<double>(), 2.0);
  EXPECT_TRUE(b["sub_normalization"].is_null());
}

TEST(Transformer, SubPlacementNeedsOneInnerWidthPerBranch) {
  ModelText m;
  m.mlp = "{type: moe, experts: 4, intermediate_size: 32}";
  m.block_extra = "      normalization_placement: sub\n";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:14:32: error: model.decoder.block.normalization_placement: sub needs a "
            "mixer and an MLP with one inner width (found attention and moe)\n");
}

}  // namespace
