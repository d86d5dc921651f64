// A model built in C++ without any YAML, resolved and validated by the same rules.
#include "blocks/models/language_model.h"

#include <gtest/gtest.h>

#include "blocks/mixers/attention.h"
#include "blocks/mlps/gated.h"
#include "blocks/norms/normalization.h"
#include "blocks/rotary/rotary.h"
#include "blocks/sequences/repeat.h"
#include "blocks/sequences/transformer.h"
#include "framework/config/resolve.h"

namespace {

using namespace blocks;

LanguageModelConfig small_model(int64_t heads, int64_t groups) {
  AttentionConfig attention;
  attention.heads = heads;
  attention.head_groups = groups;
  attention.rotary = DefaultRotaryConfig{};
  GatedMlpConfig mlp;
  mlp.intermediate_size = 256;
  TransformerConfig block;
  block.mixer = attention;
  block.mlp = mlp;
  block.normalization = RmsNormConfig{};
  RepeatSequenceConfig decoder;
  decoder.block = block;
  decoder.num_layers = 4;
  LanguageModelConfig model;
  model.hidden_size = 128;
  model.embeddings.vocab_size = 1000;
  model.decoder = decoder;
  model.head.normalization = RmsNormConfig{};
  model.head.tied = true;
  return model;
}

TEST(LanguageModel, BuiltInCodeResolves) {
  LanguageModelConfig model = small_model(8, 2);
  config::Diagnostics d;
  config::resolve_tree(model, d);
  ASSERT_TRUE(d.ok()) << d.format();
  auto* decoder = model.decoder.as<RepeatSequenceConfig>();
  ASSERT_NE(decoder, nullptr);
  auto* attention = decoder->block.as<TransformerConfig>()->mixer.as<AttentionConfig>();
  EXPECT_EQ(attention->head_size, 16);
  EXPECT_EQ(attention->output.weight_initialization.type_name(), "scaled_normal");
  EXPECT_EQ(model.peft.type_name(), "none");
  EXPECT_FALSE(model.head.output.has_value());
}

TEST(LanguageModel, BuiltInCodeGetsTheSameErrorsWithoutMarks) {
  LanguageModelConfig model = small_model(8, 3);
  config::Diagnostics d;
  config::resolve_tree(model, d);
  EXPECT_EQ(d.format(),
            "<code>: error: model.decoder.block.mixer.head_groups: heads (8) must be divisible "
            "by head_groups (3)\n");
}

TEST(LanguageModel, CopiesAreDeep) {
  LanguageModelConfig a = small_model(8, 2);
  LanguageModelConfig b = a;
  b.decoder.as<RepeatSequenceConfig>()->num_layers = 9;
  EXPECT_EQ(a.decoder.as<RepeatSequenceConfig>()->num_layers, 4);
  EXPECT_EQ(b.decoder->layer_count(), 9);
}

}  // namespace
