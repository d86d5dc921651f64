// Parameter counts from resolved configs alone, against the figures the model authors publish
// (and that PyTorch's sum(p.numel()) gives for the Hugging Face checkpoints).
#include "framework/config/parameters.h"

#include <gtest/gtest.h>

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
