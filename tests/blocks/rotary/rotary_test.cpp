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

}  // namespace
