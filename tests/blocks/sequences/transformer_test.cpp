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

// A branch is left out by leaving its key out; the block then has no parameters for it, and
// its one branch is normalized by `normalization` (no mlp_normalization is made).
TEST(Transformer, ABlockWithoutAnMlpHasNoMlpNormalization) {
  ModelText m;
  m.mixer = "{type: mamba, state_size: 8}";
  m.mlp = "";
  const auto doc = resolved(m.text());
  const auto& b = block_of(doc);
  EXPECT_TRUE(b["mlp"].is_null());
  EXPECT_TRUE(b["mlp_normalization"].is_null());
  EXPECT_EQ(b["normalization"]["type"], "rms_norm");
  // The resolved text resolves to itself.
  EXPECT_EQ(resolved("version: 1\nmodel: " + doc["model"].dump() + "\n").dump(), doc.dump());
}

TEST(Transformer, ABlockWithoutAMixer) {
  ModelText m;
  m.mixer = "";
  const auto b = block_of(resolved(m.text()));
  EXPECT_TRUE(b["mixer"].is_null());
  EXPECT_TRUE(b["mlp_normalization"].is_null());
  EXPECT_EQ(b["mlp"]["type"], "gated");
}

TEST(Transformer, OneBranchRules) {
  ModelText neither;
  neither.mixer = "";
  neither.mlp = "";
  EXPECT_EQ(errors(neither.text()), "test.yaml:10:7: error: model.decoder.block: a transformer block needs a mixer, an mlp "
            "or both; it has neither\n");
  ModelText unused;
  unused.mlp = "";
  unused.mixer = "{type: mamba, state_size: 8}";
  unused.block_extra = "      mlp_normalization: {type: layer_norm}\n";
  EXPECT_EQ(errors(unused.text()), "test.yaml:13:26: error: model.decoder.block.mlp_normalization: is unused in a block "
            "without an mlp (its one branch is normalized by `normalization`)\n");
  ModelText sub;
  sub.mlp = "";
  sub.block_extra = "      normalization_placement: sub\n";
  EXPECT_EQ(errors(sub.text()), "test.yaml:13:32: error: model.decoder.block.normalization_placement: sub needs both a "
            "mixer and an MLP (this block has no mlp)\n");
  // `none` is no MLP type: leaving the key out is the one way to say it.
  ModelText none;
  none.mlp = "{type: none}";
  EXPECT_NE(errors(none.text()).find("model.decoder.block.mlp.type: unknown"), std::string::npos)
      << errors(none.text());
}

}  // namespace
