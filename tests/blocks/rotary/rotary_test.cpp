#include <cmath>

#include "framework/config/emit.h"
#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Rotary, XposDefaultsToTheInterleavedLayout) {
  ModelText m;
  m.mixer = "{type: attention, heads: 4, rotary: {type: xpos}}";
  const auto r = block_of(resolved(m.text()))["mixer"]["rotary"];
  EXPECT_EQ(r["layout"], "interleaved");
  EXPECT_DOUBLE_EQ(r["scale_base"].get<double>(), 512.0);
}

TEST(Rotary, Llama3FrequencyBandMustBeOrdered) {
  ModelText m;
  m.mixer =
      "{type: attention, heads: 4, rotary: {type: llama3, low_frequency_factor: 4, "
      "high_frequency_factor: 1}}";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:11:113: error: model.decoder.block.mixer.rotary.high_frequency_factor: "
            "must be greater than low_frequency_factor (4), found 1\n");
}

std::string yarn(const std::string& fields) {
  ModelText m;
  m.mixer = "{type: attention, heads: 4, rotary: {type: yarn" + fields + "}}";
  return m.text();
}

TEST(Rotary, YarnDefaultsFollowTransformers) {
  const auto r = block_of(
      resolved(yarn(", scale_factor: 4, original_context_length: 4096")))["mixer"]["rotary"];
  EXPECT_EQ(r, blocks::config::Json::parse(R"({"type": "yarn", "theta": 10000.0, "layout": "half",
      "scale_factor": 4.0, "original_context_length": 4096, "beta_fast": 32.0, "beta_slow": 1.0,
      "attention_factor": )" + blocks::config::Json(0.1 * std::log(4.0) + 1).dump() +
                                           R"(, "truncate": true})"));
}

TEST(Rotary, YarnAttentionFactorIsOneWithoutScalingAndKeptWhenGiven) {
  const auto unscaled = resolved(yarn(", scale_factor: 1, original_context_length: 4096"));
  EXPECT_DOUBLE_EQ(block_of(unscaled)["mixer"]["rotary"]["attention_factor"].get<double>(), 1.0);
  const auto given =
      resolved(yarn(", scale_factor: 8, original_context_length: 4096, attention_factor: 1.5"));
  EXPECT_DOUBLE_EQ(block_of(given)["mixer"]["rotary"]["attention_factor"].get<double>(), 1.5);
  EXPECT_EQ(resolved(blocks::config::to_yaml(given)), given);
}

TEST(Rotary, YarnRules) {
  EXPECT_EQ(errors(yarn("")),
            "test.yaml:11:50: error: model.decoder.block.mixer.rotary: missing required field "
            "'scale_factor'\n"
            "test.yaml:11:50: error: model.decoder.block.mixer.rotary: missing required field "
            "'original_context_length'\n");
  EXPECT_EQ(errors(yarn(", scale_factor: 0.5, original_context_length: 0")),
            "test.yaml:11:77: error: model.decoder.block.mixer.rotary.scale_factor: must be >= 1, "
            "found 0.5\n"
            "test.yaml:11:107: error: "
            "model.decoder.block.mixer.rotary.original_context_length: must be >= 1, found 0\n");
  EXPECT_EQ(errors(yarn(", scale_factor: 4, original_context_length: 4096, beta_fast: 2, "
                        "beta_slow: 2")),
            "test.yaml:11:122: error: model.decoder.block.mixer.rotary.beta_fast: must be greater "
            "than beta_slow (2), found 2\n");
  EXPECT_EQ(errors(yarn(", scale_factor: 4, original_context_length: 4096, beta_slow: 0, "
                        "attention_factor: 0")),
            "test.yaml:11:122: error: model.decoder.block.mixer.rotary.beta_slow: must be > 0, "
            "found 0\n"
            "test.yaml:11:143: error: model.decoder.block.mixer.rotary.attention_factor: must be > "
            "0, found 0\n");
}

}  // namespace
