#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Mamba, DefaultsFollowTheReferenceImplementation) {
  ModelText m;
  m.hidden_size = 100;  // dt_rank = ceil(100 / 16) = 7
  m.mixer = "{type: mamba}";
  const auto a = block_of(resolved(m.text()))["mixer"];
  EXPECT_EQ(a["state_size"], 16);
  EXPECT_EQ(a["conv_kernel_size"], 4);
  EXPECT_EQ(a["expansion"], 2);
  EXPECT_EQ(a["dt_rank"], 7);
  EXPECT_EQ(a["state_normalization"]["type"], "none");
  // dt_proj carries the time-step initialization in its bias; the others have no bias.
  EXPECT_EQ(a["dt"]["bias"], true);
  EXPECT_EQ(a["dt"]["bias_initialization"]["type"], "mamba_dt");
  EXPECT_DOUBLE_EQ(a["dt"]["bias_initialization"]["dt_min"].get<double>(), 0.001);
  EXPECT_DOUBLE_EQ(a["dt"]["bias_initialization"]["dt_max"].get<double>(), 0.1);
  for (const char* name : {"input", "selection", "output"}) EXPECT_EQ(a[name]["bias"], false);
  EXPECT_EQ(a["output"]["weight_initialization"]["type"], "scaled_normal");
  EXPECT_EQ(a["a_log"]["initialization"]["type"], "s4d_real");
  EXPECT_EQ(a["d"]["initialization"]["type"], "ones");
  EXPECT_EQ(a["conv"]["initialization"]["type"], "kaiming");
  EXPECT_EQ(a["conv"]["initialization"]["distribution"], "uniform");
}

TEST(Mamba, ExplicitDtRankAndStateNormalization) {
  ModelText m;
  m.mixer = "{type: mamba, dt_rank: 3, state_normalization: {type: rms_norm, epsilon: 1.0e-6}}";
  const auto a = block_of(resolved(m.text()))["mixer"];
  EXPECT_EQ(a["dt_rank"], 3);
  EXPECT_EQ(a["state_normalization"]["type"], "rms_norm");
  EXPECT_DOUBLE_EQ(a["state_normalization"]["epsilon"].get<double>(), 1e-6);
}

}  // namespace
