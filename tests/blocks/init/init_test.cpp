// Initialization configs: derived values checked against the papers' formulas.
#include <cmath>

#include "blocks/init/magneto.h"
#include "blocks/init/normal.h"
#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Init, ScaledNormalUsesTheDecoderDepth) {
  ModelText m;
  m.layers = 12;
  const auto down = block_of(resolved(m.text()))["mlp"]["down"]["weight_initialization"];
  EXPECT_EQ(down["num_layers"], 12);
  blocks::ScaledNormalInitConfig c;
  c.std = 0.02;
  c.num_layers = 12;
  EXPECT_DOUBLE_EQ(c.scaled_std(), 0.02 / std::sqrt(24.0));  // GPT-2: 1/sqrt(2 * n_layer)
}

TEST(Init, MagnetoGainIsSqrtLogTwoN) {
  ModelText m;
  m.layers = 24;
  m.mlp =
      "{type: gated, intermediate_size: 128, down: {weight_initialization: {type: magneto}}, "
      "up: {weight_initialization: {type: magneto, base_gain: 0.5}}}";
  const auto mlp = block_of(resolved(m.text()))["mlp"];
  // torchscale: init_scale = math.sqrt(math.log(decoder_layers * 2)); Python gives
  // math.sqrt(math.log(48)) = 1.9675367876885788.
  EXPECT_NEAR(mlp["down"]["weight_initialization"]["gain"].get<double>(), 1.9675367876885788,
              1e-12);
  EXPECT_NEAR(mlp["up"]["weight_initialization"]["gain"].get<double>(), 0.5 * 1.9675367876885788,
              1e-12);
  EXPECT_EQ(mlp["down"]["weight_initialization"]["num_layers"], 24);
}

TEST(Init, RangeRules) {
  ModelText m;
  m.mlp =
      "{type: gated, intermediate_size: 128, up: {weight_initialization: {type: uniform, "
      "low: 0.1, high: 0.1}}}";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:12:110: error: model.decoder.block.mlp.up.weight_initialization.high: "
            "must be greater than low (0.1), found 0.1\n");
  ModelText dt;
  dt.mixer =
      "{type: mamba, dt: {bias_initialization: {type: mamba_dt, dt_min: 0.5, "
      "dt_max: 0.1}}}";
  EXPECT_EQ(errors(dt.text()),
            "test.yaml:11:92: error: model.decoder.block.mixer.dt.bias_initialization.dt_max: "
            "must be >= dt_min (0.5), found 0.1\n");
}

}  // namespace
