#include "tests/support/model_text.h"

namespace {

using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::replace;
using blocks::testing::resolved;

TEST(Embeddings, LearnedPositionsOnlyWithMaxPositions) {
  ModelText m;
  const auto with =
      resolved(replace(m.text(), "{vocab_size: 100}", "{vocab_size: 100, max_positions: 32}"));
  EXPECT_EQ(with["model"]["embeddings"]["position"]["initialization"]["type"], "normal");
  const auto without = resolved(m.text());
  EXPECT_TRUE(without["model"]["embeddings"]["position"].is_null());
  EXPECT_EQ(errors(replace(m.text(), "{vocab_size: 100}", "{vocab_size: 100, position: {}}")),
            "test.yaml:5:43: error: model.embeddings.position: is set but max_positions is null\n");
}

TEST(Embeddings, ScaleDefaultsToOneAndMustBePositive) {
  ModelText m;
  EXPECT_DOUBLE_EQ(resolved(m.text())["model"]["embeddings"]["scale"].get<double>(), 1.0);
  const auto gemma =
      resolved(replace(m.text(), "{vocab_size: 100}", "{vocab_size: 100, scale: 8}"));
  EXPECT_DOUBLE_EQ(gemma["model"]["embeddings"]["scale"].get<double>(), 8.0);
  EXPECT_EQ(errors(replace(m.text(), "{vocab_size: 100}", "{vocab_size: 100, scale: 0}")),
            "test.yaml:5:40: error: model.embeddings.scale: must be > 0, found 0\n");
}

}  // namespace
