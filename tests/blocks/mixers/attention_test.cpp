#include <cmath>

#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Attention, HeadGroupsHeadSizeAndScaleDefaultFromHidden) {
  ModelText m;
  m.hidden_size = 96;
  m.mixer = "{type: attention, rotary: {type: none}, heads: 6}";
  const auto a = block_of(resolved(m.text()))["mixer"];
  EXPECT_EQ(a["head_groups"], 6);
  EXPECT_EQ(a["head_size"], 16);
  EXPECT_DOUBLE_EQ(a["softmax_scale"].get<double>(), 0.25);
  EXPECT_EQ(a["rotary"]["type"], "none");
  EXPECT_EQ(a["qk_norm"]["type"], "none");
  EXPECT_EQ(a["causal"], true);
  EXPECT_TRUE(a["window_size"].is_null());
}

TEST(Attention, ExplicitHeadSizeWins) {
  ModelText m;
  m.mixer = "{type: attention, rotary: {type: none}, heads: 4, head_groups: 1, head_size: 8, softmax_scale: 0.5}";
  const auto a = block_of(resolved(m.text()))["mixer"];
  EXPECT_EQ(a["head_groups"], 1);
  EXPECT_EQ(a["head_size"], 8);
  EXPECT_DOUBLE_EQ(a["softmax_scale"].get<double>(), 0.5);
}

TEST(Attention, LinearDefaultsFromTheParent) {
  ModelText m;
  m.layers = 6;
  m.block_extra = "      add_linear_biases: true\n      init_std: 0.01\n";
  const auto a = block_of(resolved(m.text()))["mixer"];
  for (const char* name : {"query", "key", "value", "output"}) {
    EXPECT_EQ(a[name]["bias"], true) << name;
    EXPECT_EQ(a[name]["bias_initialization"]["type"], "zeros") << name;
    EXPECT_DOUBLE_EQ(a[name]["weight_initialization"]["std"].get<double>(), 0.01) << name;
  }
  EXPECT_EQ(a["query"]["weight_initialization"]["type"], "normal");
  EXPECT_EQ(a["output"]["weight_initialization"]["type"], "scaled_normal");
  EXPECT_EQ(a["output"]["weight_initialization"]["num_layers"], 6);
  // The shortcuts are gone from the resolved block.
  EXPECT_FALSE(block_of(resolved(m.text())).contains("add_linear_biases"));
  EXPECT_FALSE(block_of(resolved(m.text())).contains("init_std"));
}

TEST(Attention, ExplicitLinearSettingsSurviveShortcuts) {
  ModelText m;
  m.mixer =
      "{type: attention, rotary: {type: none}, heads: 4, key: {bias: false}, value: {weight_initialization: "
      "{type: xavier, gain: 2.0}}}";
  m.block_extra = "      add_linear_biases: true\n";
  const auto a = block_of(resolved(m.text()))["mixer"];
  EXPECT_EQ(a["key"]["bias"], false);
  EXPECT_EQ(a["query"]["bias"], true);
  EXPECT_EQ(a["value"]["weight_initialization"]["type"], "xavier");
  EXPECT_DOUBLE_EQ(a["value"]["weight_initialization"]["gain"].get<double>(), 2.0);
}

TEST(Attention, Llama3RotaryFields) {
  ModelText m;
  m.mixer = "{type: attention, heads: 4, rotary: {type: llama3, layout: interleaved}}";
  const auto r = block_of(resolved(m.text()))["mixer"]["rotary"];
  EXPECT_EQ(r["type"], "llama3");
  EXPECT_EQ(r["layout"], "interleaved");
  EXPECT_DOUBLE_EQ(r["theta"].get<double>(), 500000.0);
  EXPECT_DOUBLE_EQ(r["scale_factor"].get<double>(), 8.0);
  EXPECT_DOUBLE_EQ(r["low_frequency_factor"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(r["high_frequency_factor"].get<double>(), 4.0);
  EXPECT_EQ(r["original_context_length"], 8192);
}

TEST(Attention, CrossFieldRules) {
  ModelText m;
  m.hidden_size = 60;
  m.mixer = "{type: attention, rotary: {type: none}, heads: 8, head_groups: 3}";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:11:61: error: model.decoder.block.mixer.heads: hidden_size 60 is not "
            "divisible by heads 8; set head_size explicitly\n"
            "test.yaml:11:77: error: model.decoder.block.mixer.head_groups: heads (8) must be "
            "divisible by head_groups (3)\n");
  ModelText odd;
  odd.mixer =
      "{type: attention, heads: 4, head_size: 7, rotary: {type: default}, causal: false, "
      "window_size: 16}";
  EXPECT_EQ(errors(odd.text()),
            "test.yaml:11:53: error: model.decoder.block.mixer.head_size: rotary embeddings need "
            "an even head_size, found 7\n"
            "test.yaml:11:109: error: model.decoder.block.mixer.window_size: sliding windows need "
            "causal: true\n");
}

// Attention in a model with neither rotary nor learned positions sees no token order but the
// causal mask's: an error unless `rotary: {type: none}` is written (NoPE, Jamba).
TEST(Attention, NoPositionalInformationIsAnErrorUnlessNoneIsWritten) {
  ModelText m;
  m.mixer = "{type: attention, heads: 4}";
  EXPECT_EQ(errors(m.text()), "test.yaml:11:14: error: model.decoder.block.mixer.rotary: the model has no positional "
            "information (no rotary embedding and no learned positions: embeddings.max_positions "
            "is null); choose a rotary type, or write `rotary: {type: none}` for a model without "
            "positions (NoPE)\n");
  // Written explicitly, it resolves, and the resolved text (which shows rotary none)
  // resolves to itself.
  m.mixer = "{type: attention, heads: 4, rotary: {type: none}}";
  const auto once = resolved(m.text());
  EXPECT_EQ(block_of(once)["mixer"]["rotary"]["type"], "none");
  const std::string text = "version: 1\nmodel: " + once["model"].dump() + "\n";
  EXPECT_EQ(resolved(text).dump(), once.dump());
}

TEST(Attention, LearnedPositionsNeedNoRotary) {
  ModelText m;
  m.mixer = "{type: attention, heads: 4}";
  m.model_extra = "";
  const std::string text =
      blocks::testing::replace(m.text(), "{vocab_size: 100}", "{vocab_size: 100, max_positions: 16}");
  EXPECT_EQ(errors(text), "");
  EXPECT_EQ(block_of(resolved(text))["mixer"]["rotary"]["type"], "none");
}

}  // namespace
