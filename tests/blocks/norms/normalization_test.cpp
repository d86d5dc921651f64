#include "framework/config/emit.h"
#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Normalization, FixedDefaultsAndSecondNormCopiesTheFirst) {
  ModelText m;
  m.normalization = "{type: layer_norm, epsilon: 1.0e-6, lr_scale: 0.5}";
  const auto block = block_of(resolved(m.text()));
  const auto& n = block["normalization"];
  EXPECT_EQ(n["weight_initialization"]["type"], "ones");
  EXPECT_EQ(n["bias_initialization"]["type"], "zeros");
  EXPECT_DOUBLE_EQ(n["effective_lr_scale"].get<double>(), 0.5);
  EXPECT_EQ(block["mlp_normalization"], n);
  EXPECT_TRUE(block["sub_normalization"].is_null());
}

TEST(Normalization, SubPlacementAddsSubNormalization) {
  ModelText m;
  m.block_extra = "      normalization_placement: sub\n";
  const auto block = block_of(resolved(m.text()));
  EXPECT_EQ(block["sub_normalization"]["type"], "rms_norm");
}

TEST(Normalization, RmsNormWeightStartsAtOneMinusTheOffset) {
  ModelText m;
  const auto plain = block_of(resolved(m.text()))["normalization"];
  EXPECT_DOUBLE_EQ(plain["weight_offset"].get<double>(), 0.0);
  EXPECT_EQ(plain["weight_initialization"], blocks::config::Json::parse(R"({"type": "ones"})"));

  m.normalization = "{type: rms_norm, weight_offset: 1}";
  const auto gemma = block_of(resolved(m.text()));
  EXPECT_DOUBLE_EQ(gemma["normalization"]["weight_offset"].get<double>(), 1.0);
  EXPECT_EQ(gemma["normalization"]["weight_initialization"],
            blocks::config::Json::parse(R"({"type": "zeros"})"));
  EXPECT_EQ(gemma["mlp_normalization"], gemma["normalization"]);

  m.normalization = "{type: rms_norm, weight_offset: 0.25}";
  EXPECT_EQ(block_of(resolved(m.text()))["normalization"]["weight_initialization"],
            blocks::config::Json::parse(R"({"type": "fill", "value": 0.75})"));

  m.normalization = "{type: rms_norm, weight_offset: 1, weight_initialization: {type: ones}}";
  EXPECT_EQ(block_of(resolved(m.text()))["normalization"]["weight_initialization"]["type"], "ones");
}

TEST(Normalization, OffsetReachesQueryKeyNorm) {
  ModelText m;
  m.mixer =
      "{type: attention, heads: 4, rotary: {type: default}, qk_norm: {type: rms_norm, "
      "weight_offset: 1}}";
  const auto qk = block_of(resolved(m.text()))["mixer"]["qk_norm"];
  EXPECT_DOUBLE_EQ(qk["weight_offset"].get<double>(), 1.0);
  EXPECT_EQ(qk["weight_initialization"]["type"], "zeros");
}

TEST(Normalization, ResolvedOffsetNormResolvesToItself) {
  ModelText m;
  m.normalization = "{type: rms_norm, weight_offset: 0.5}";
  const auto once = resolved(m.text());
  EXPECT_EQ(resolved(blocks::config::to_yaml(once)), once);
}

TEST(Normalization, Rules) {
  ModelText m;
  m.normalization = "{type: layer_norm, bias: false, bias_initialization: {type: zeros}}";
  m.block_extra = "      sub_normalization: {type: rms_norm}\n";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:13:75: error: model.decoder.block.normalization.bias_initialization: is "
            "set but bias is false\n"
            "test.yaml:14:26: error: model.decoder.block.sub_normalization: is only used with "
            "normalization_placement: sub (found 'pre')\n");
}

}  // namespace
