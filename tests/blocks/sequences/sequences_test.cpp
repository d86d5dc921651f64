#include "tests/support/model_text.h"

namespace {

using blocks::testing::errors;
using blocks::testing::resolved;

std::string with_decoder(const std::string& decoder) {
  return "version: 1\nmodel:\n  type: language_model\n  hidden_size: 64\n"
         "  embeddings: {vocab_size: 100}\n  head:\n    normalization: {type: rms_norm}\n"
         "  decoder:\n" +
         decoder;
}

const char* kAttention =
    "{type: transformer, mixer: {type: attention, rotary: {type: none}, heads: 4}, mlp: {type: gated, "
    "intermediate_size: 128}, normalization: {type: rms_norm}}";
const char* kMamba =
    "{type: transformer, mixer: {type: mamba}, mlp: {type: gated, intermediate_size: 128}, "
    "normalization: {type: rms_norm}}";

TEST(Sequences, PatternStringNamesBlocksAndRepeats) {
  const auto doc = resolved(with_decoder(std::string("    type: pattern\n    pattern: MMA\n") +
                                         "    num_layers: 6\n    blocks:\n      M: " + kMamba +
                                         "\n      A: " + kAttention + "\n"));
  const auto& d = doc["model"]["decoder"];
  EXPECT_EQ(d["pattern"], blocks::config::Json::array({"M", "M", "A"}));
  EXPECT_EQ(d["num_layers"], 6);
  // Six layers: every residual projection is scaled for six.
  EXPECT_EQ(d["blocks"]["A"]["mixer"]["output"]["weight_initialization"]["num_layers"], 6);
}

TEST(Sequences, NestedSequencesCountEveryBlock) {
  const auto doc = resolved(with_decoder(std::string("    type: repeat\n    num_layers: 3\n") +
                                         "    block:\n      type: fixed\n      blocks: [" +
                                         kAttention + ", " + kMamba + "]\n"));
  EXPECT_EQ(doc["model"]["decoder"]["block"]["blocks"][0]["mixer"]["output"]
               ["weight_initialization"]["num_layers"],
            6);
}

TEST(Sequences, OverridesMergeOntoTheLayerAndChangeTypesCleanly) {
  const auto doc = resolved(
      with_decoder(std::string("    type: repeat\n    num_layers: 3\n    block: ") + kAttention +
                   "\n    overrides:\n      1: {mixer: {type: mamba, state_size: 8}}\n"
                   "      2: {mixer: {heads: 2}, lr_scale: 0}\n"));
  const auto& o = doc["model"]["decoder"]["overrides"];
  EXPECT_EQ(o["1"]["mixer"]["type"], "mamba");
  EXPECT_EQ(o["1"]["mixer"]["state_size"], 8);
  EXPECT_FALSE(o["1"]["mixer"].contains("heads"));  // attention's fields did not creep in
  EXPECT_EQ(o["1"]["mlp"]["intermediate_size"], 128);
  EXPECT_EQ(o["2"]["mixer"]["heads"], 2);
  EXPECT_EQ(o["2"]["mixer"]["query"]["trainable"], false);
  EXPECT_EQ(doc["model"]["decoder"]["block"]["mixer"]["query"]["trainable"], true);
}

TEST(Sequences, PatternRules) {
  EXPECT_EQ(
      errors(
          with_decoder(std::string("    type: pattern\n    pattern: MAX\n") +
                       "    num_layers: 4\n    shared: [A, B]\n    blocks:\n      M: " + kMamba +
                       "\n      A: " + kAttention + "\n      U: " + kMamba +
                       "\n    overrides:\n      1: {lr_scale: 0.5}\n      9: {lr_scale: 0.5}\n")),
      "test.yaml:10:16: error: model.decoder.pattern[2]: unknown block name 'X'; did you "
      "mean 'A'? (blocks: A, M, U)\n"
      "test.yaml:11:17: error: model.decoder.num_layers: must be a multiple of the "
      "pattern's length (3), found 4\n"
      "test.yaml:12:17: error: model.decoder.shared[1]: unknown block name 'B'; did you "
      "mean 'A'? (blocks: A, M, U)\n"
      "test.yaml:16:10: error: model.decoder.blocks.U: block 'U' is not used by the pattern\n"
      "test.yaml:18:10: error: model.decoder.overrides.1: layer 1 is shared block 'A'; shared "
      "blocks cannot be overridden per layer\n"
      "test.yaml:19:10: error: model.decoder.overrides.9: override for layer 9, but the "
      "sequence has 4 layers (0-3)\n");
}

TEST(Sequences, FixedNeedsBlocks) {
  EXPECT_EQ(errors(with_decoder("    type: fixed\n    blocks: []\n")),
            "test.yaml:10:13: error: model.decoder.blocks: needs at least one block\n");
}

TEST(Sequences, PatternAndOverrideKeyRules) {
  EXPECT_EQ(
      errors(with_decoder(std::string("    type: pattern\n    pattern: []\n") +
                          "    blocks:\n      A: " + kAttention + "\n")),
      "test.yaml:10:14: error: model.decoder.pattern: must name at least one block\n"
      "test.yaml:12:10: error: model.decoder.blocks.A: block 'A' is not used by the pattern\n");
  EXPECT_EQ(errors(with_decoder(std::string("    type: repeat\n    num_layers: 2\n    block: ") +
                                kAttention + "\n    overrides: {last: {lr_scale: 0}}\n")),
            "test.yaml:12:17: error: model.decoder.overrides.last: expected an integer key, found "
            "'last'\n");
}

}  // namespace
