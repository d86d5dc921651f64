// Parameter counts from resolved configs alone, against the figures the model authors publish
// (and that PyTorch's sum(p.numel()) gives for the Hugging Face checkpoints).
#include "framework/config/parameters.h"

#include <gtest/gtest.h>

#include <chrono>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "tests/support/model_text.h"

namespace {

using namespace blocks::config;

ParameterCount count(const std::string& name) {
  return count_parameters(*blocks::testing::zoo(name).model);
}

TEST(Parameters, PublishedModelSizes) {
  EXPECT_EQ(count("gpt2").total, 124'439'808);             // GPT-2 small, tied head
  EXPECT_EQ(count("llama3-8b").total, 8'030'261'248);      // Meta-Llama-3-8B
  EXPECT_EQ(count("llama3-70b").total, 70'553'706'496);    // Meta-Llama-3-70B
  EXPECT_EQ(count("mistral-7b").total, 7'241'732'096);     // Mistral-7B-v0.1
  EXPECT_EQ(count("mixtral-8x7b").total, 46'702'792'704);  // Mixtral-8x7B-v0.1
}

TEST(Parameters, LoraAddsOnlyTrainableAdapters) {
  const auto base = count("llama3-8b");
  const auto lora = count("lora");
  // rank 16 on query [4096 -> 4096] and value [4096 -> 1024] of 32 layers, plus gate, up
  // [4096 -> 14336] and down [14336 -> 4096] of layers 16-31.
  const int64_t r = 16;
  const int64_t attention = 32 * (r * (4096 + 4096) + r * (4096 + 1024));
  const int64_t mlp = 16 * 3 * r * (4096 + 14336);
  EXPECT_EQ(lora.total, base.total + attention + mlp);
  EXPECT_EQ(lora.trainable, attention + mlp);
  EXPECT_EQ(base.trainable, base.total);
}

TEST(Parameters, FrozenLayersAreNotTrainable) {
  blocks::testing::ModelText m;
  m.layers = 3;
  const std::string text = blocks::testing::replace(
      m.text(), "    num_layers: 3\n", "    num_layers: 3\n    overrides: {0: {lr_scale: 0}}\n");
  const auto c = count_parameters(*blocks::testing::document(text).model);
  // Per block: q, k, v, o 64x64; gate, up, down 64x128; two norms of 64.
  const int64_t block = 4 * 64 * 64 + 3 * 64 * 128 + 2 * 64;
  const int64_t rest = 100 * 64 + 64 + 100 * 64;  // embeddings, final norm, untied head
  EXPECT_EQ(c.total, 3 * block + rest);
  EXPECT_EQ(c.trainable, 2 * block + rest);
}

TEST(Parameters, SharedBlocksCountOnce) {
  const std::string text = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  head: {normalization: {type: rms_norm}, tied: true}
  decoder:
    type: pattern
    pattern: MAMA
    shared: [A]
    blocks:
      M: {type: transformer, mixer: {type: mamba, dt_rank: 4}, mlp: {type: gated, intermediate_size: 128}, normalization: {type: rms_norm}}
      A: {type: transformer, mixer: {type: attention, rotary: {type: none}, heads: 4}, mlp: {type: gated, intermediate_size: 128}, normalization: {type: rms_norm}}
)";
  const auto doc = blocks::testing::document(text);
  const int64_t mlp = 3 * 64 * 128 + 2 * 64;  // gated MLP and the block's two norms
  const int64_t attention = 4 * 64 * 64;
  // Mamba, inner 128, state 16, dt rank 4, conv 4: in_proj, x_proj, dt_proj (+bias), out_proj,
  // conv weight and bias, A_log, D.
  const int64_t mamba =
      64 * 256 + 128 * (4 + 32) + (4 * 128 + 128) + 128 * 64 + 128 * 4 + 128 + 128 * 16 + 128;
  EXPECT_EQ(count_parameters(*doc.model).total,
            2 * (mamba + mlp) + (attention + mlp) + 100 * 64 + 64);
}

}  // namespace

// --- counts that do not fit, and repeats that cost one layer ---

namespace hostile {

using blocks::testing::ModelText;
using blocks::testing::replace;

// Whether the errors of `text` include `part` (the whole text is shown when they do not).
::testing::AssertionResult has_error(const std::string& text, const std::string& part) {
  const std::string errors = blocks::testing::errors(text);
  if (errors.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no '" << part << "' in:\n" << errors;
}

// 2^30 x 2^30 embeddings are 2^60 elements; the layers pass 2^63 and printed negative counts.
TEST(Parameters, CountsPastInt64AreAnErrorAtTheConfigWhereTheyPass) {
  ModelText text;
  text.hidden_size = 1 << 30;
  const std::string model =
      replace(text.text(), "vocab_size: 100", "vocab_size: 1073741824");
  EXPECT_TRUE(has_error(model, "is more than 2^63 - 1"));
  EXPECT_TRUE(has_error(model, "error: model."));
}

// A 2^32-wide layer: the tensor's element count itself does not fit.
TEST(Parameters, ATensorPastInt64IsAnErrorNamingIt) {
  ModelText text;
  text.mlp = "{type: mlp, intermediate_size: 4294967296}";
  text.hidden_size = 1 << 30;
  text.mixer = "{type: attention, rotary: {type: none}, heads: 1, head_size: 4294967296}";
  // 2^32 x 2^30 elements fit; the two layers' copies do not.
  EXPECT_TRUE(has_error(text.text(), "error: model.decoder.block.mixer.query.weight: its elements "
                                     "times its copies (4611686018427387904 x 2) is more than "
                                     "2^63 - 1"));
  // 2^33 x 2^31 elements do not fit one tensor.
  text.mixer = "{type: attention, rotary: {type: none}, heads: 1, head_size: 8589934592}";
  EXPECT_TRUE(has_error(replace(text.text(), "hidden_size: 1073741824", "hidden_size: 2147483648"),
                        "elements is more than 2^63 - 1"));
}

// Widths that resolution multiplies (heads x head_size) are checked where they are derived.
TEST(Parameters, DerivedWidthsPastInt64AreAnErrorAtTheField) {
  ModelText text;
  text.mixer = "{type: attention, rotary: {type: none}, heads: 4294967296, head_size: 4294967296}";
  EXPECT_TRUE(has_error(text.text(), "error: model.decoder.block.mixer.head_size: 4294967296 x "
                                     "4294967296 is more than 2^63 - 1"));
}

// A repeat of N identical layers is one layer times N: validating and counting 10^12 layers
// (raised limit) takes as long as 2 layers; before, memory grew by the layer.
TEST(Parameters, ARepeatOfManyLayersCostsOneLayer) {
  ModelText text;
  text.layers = 1'000'000'000;
  const std::string model = replace(text.text(), "num_layers: 1000000000",
                                    "num_layers: 1000000000000\n    overrides: {7: {mlp: "
                                    "{intermediate_size: 256}}}");
  blocks::config::Diagnostics d;
  blocks::config::LoadOptions options;
  options.limits.max_layers = 2'000'000'000'000;
  const auto start = std::chrono::steady_clock::now();
  auto doc = blocks::config::load_document_text(model, "test.yaml", blocks::registry(), d, options);
  ASSERT_TRUE(doc) << d.format();
  const auto large = count_parameters(*doc->model);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  ModelText one, two;
  one.layers = 1;
  const int64_t with_one = count_parameters(*blocks::testing::document(one.text()).model).total;
  const int64_t with_two = count_parameters(*blocks::testing::document(two.text()).model).total;
  const int64_t per_layer = with_two - with_one, outside = with_one - per_layer;
  // Layer 7's gated MLP is 256 wide instead of 128: gate, up and down grow by 64 x 128 each.
  EXPECT_EQ(large.total, outside + 1'000'000'000'000 * per_layer + 3 * 64 * 128);
}

TEST(Parameters, LayersPastTheLimitAreAnErrorAtNumLayers) {
  ModelText text;
  text.layers = 100'001;
  EXPECT_TRUE(has_error(text.text(), "error: model.decoder.num_layers: 100001 layers are more "
                                     "than the limit of 100000 (LoadLimits::max_layers; blockc's "
                                     "--max-layers raises it)"));
}

// lr scales multiply down the tree: a product that is not finite, or that underflows to 0 or
// a subnormal, is an error where it happens (before: `inf` in the resolved dump, or frozen).
TEST(Parameters, LrScaleProductsThatOverflowOrUnderflowAreErrors) {
  ModelText text;
  text.model_extra = "  lr_scale: 1e308\n";
  text.block_extra = "      lr_scale: 1e308\n";
  EXPECT_TRUE(has_error(text.text(), "model.decoder.block.lr_scale: the lr-scale product 1e+308 "
                                     "x 1e+308 = inf is not a finite number"));
  text.model_extra = "  lr_scale: 1e-200\n";
  text.block_extra = "      lr_scale: 1e-200\n";
  EXPECT_TRUE(has_error(text.text(), "model.decoder.block.lr_scale: the lr-scale product 1e-200 "
                                     "x 1e-200 = 0 underflows"));
  text.model_extra = "  lr_scale: 1e-300\n";
  text.block_extra = "      lr_scale: 1e-10\n";
  EXPECT_TRUE(has_error(text.text(), "= 1e-310 underflows (below the smallest normal double)"));
  text.block_extra = "      lr_scale: 0\n";  // an explicit 0 freezes, as documented
  EXPECT_EQ(blocks::testing::errors(text.text()), "");
}

}  // namespace hostile
