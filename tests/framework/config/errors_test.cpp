// One test per class of config error, each checking the whole formatted diagnostic
// `FILE:LINE:COL: error: PATH: message`, and that independent errors are all reported at once.
#include <gtest/gtest.h>

#include <string>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "tests/support/model_text.h"

namespace blocks {
namespace {

using config::Diagnostics;

// A small valid model; tests replace one line (or add some) to make one mistake.
constexpr const char* kModel = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: repeat
    num_layers: 2
    block:
      type: transformer
      mixer: {type: attention, rotary: {type: none}, heads: 4}
      mlp: {type: mlp}
      normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
)";

using blocks::testing::replace;

using blocks::testing::errors;

constexpr const char* kAttentionFields =
    "heads, head_groups, head_size, rotary, causal, window_size, softmax_scale, qk_norm, "
    "dropout, query, key, value, output, lr_scale";

TEST(Errors, TheBaseModelIsValid) { EXPECT_EQ(errors(kModel), ""); }

// --- unknown names ---

TEST(Errors, UnknownFieldSuggestsTheClosestAndListsTheValidOnes) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 4, haeds: 3}")),
            std::string("test.yaml:11:64: error: model.decoder.block.mixer: unknown field 'haeds' "
                        "in attention mixer; did you mean 'heads'? (valid: ") +
                kAttentionFields + ")\n");
}

TEST(Errors, UnknownFieldFarFromEveryNameHasNoSuggestion) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 4, colour: red}")),
            std::string("test.yaml:11:64: error: model.decoder.block.mixer: unknown field "
                        "'colour' in attention mixer (valid: ") +
                kAttentionFields + ")\n");
}

TEST(Errors, UnknownFieldOfANestedStruct) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 4, query: {bais: true}}")),
            "test.yaml:11:72: error: model.decoder.block.mixer.query: unknown field 'bais' in "
            "linear; did you mean 'bias'? (valid: bias, weight_initialization, "
            "bias_initialization, lr_scale, apply_peft, effective_lr_scale, trainable)\n");
}

TEST(Errors, UnknownTypeSuggestsTheClosest) {
  EXPECT_EQ(errors(replace(kModel, "type: attention", "type: atention")),
            "test.yaml:11:21: error: model.decoder.block.mixer.type: unknown mixer type "
            "'atention'; did you mean 'attention'? (valid: attention, cross_attention, mamba)\n");
}

TEST(Errors, UnknownTypeOfABlockSlotListsSequencesToo) {
  EXPECT_EQ(errors(replace(kModel, "type: repeat", "type: repet")),
            "test.yaml:7:11: error: model.decoder.type: unknown block type 'repet'; did you mean "
            "'repeat'? (valid: fixed, gated_cross_attention, pattern, repeat, transformer)\n");
}

TEST(Errors, MissingTypeListsTheValidOnes) {
  EXPECT_EQ(errors(replace(kModel, "{type: attention, rotary: {type: none}, heads: 4}", "{heads: 4}")),
            "test.yaml:11:14: error: model.decoder.block.mixer: missing 'type' of mixer (valid: "
            "attention, cross_attention, mamba)\n");
}

TEST(Errors, UnknownChoiceSuggestsTheClosest) {
  EXPECT_EQ(errors(replace(kModel, "{type: mlp}", "{type: mlp, activation: gelu_tan}")),
            "test.yaml:12:36: error: model.decoder.block.mlp.activation: unknown value "
            "'gelu_tan'; did you mean 'gelu_tanh'? (valid: gelu, gelu_tanh, quick_gelu, relu, "
            "squared_relu, silu, identity)\n");
}

// --- wrong value types ---

TEST(Errors, QuotedNumberIsNotAnInteger) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: \"4\"}")),
            "test.yaml:11:61: error: model.decoder.block.mixer.heads: expected an integer, found "
            "the quoted string \"4\"\n");
}

TEST(Errors, QuotedTrueIsNotABoolean) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 4, causal: \"true\"}")),
            "test.yaml:11:72: error: model.decoder.block.mixer.causal: expected true or false, "
            "found the quoted string \"true\"\n");
}

TEST(Errors, OtherWrongValueTypes) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 4.5}")),
            "test.yaml:11:61: error: model.decoder.block.mixer.heads: expected an integer, found "
            "'4.5'\n");
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: [4]}")),
            "test.yaml:11:61: error: model.decoder.block.mixer.heads: expected an integer, found "
            "a list\n");
  EXPECT_EQ(
      errors(replace(kModel, "{type: rms_norm}\n  head", "{type: rms_norm, epsilon: abc}\n  head")),
      "test.yaml:13:48: error: model.decoder.block.normalization.epsilon: expected a number, "
      "found 'abc'\n");
  EXPECT_EQ(errors(replace(kModel, "mlp: {type: mlp}", "mlp: mlp")),
            "test.yaml:12:12: error: model.decoder.block.mlp: expected a mlp mapping with a "
            "'type', found 'mlp'\n");
  EXPECT_EQ(errors(replace(kModel, "embeddings: {vocab_size: 100}", "embeddings: 100")),
            "test.yaml:5:15: error: model.embeddings: expected a mapping, found '100'\n");
}

// --- ranges ---

TEST(Errors, HeadsBelowTheMinimum) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 0}")),
            "test.yaml:11:61: error: model.decoder.block.mixer.heads: must be >= 1, found 0\n");
}

TEST(Errors, DropoutAboveTheMaximum) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 4, dropout: 1.5}")),
            "test.yaml:11:73: error: model.decoder.block.mixer.dropout: must be <= 0.999, found "
            "1.5\n");
}

TEST(Errors, EpsilonMustBeAboveZero) {
  EXPECT_EQ(
      errors(replace(kModel, "{type: rms_norm}\n  head", "{type: rms_norm, epsilon: 0}\n  head")),
      "test.yaml:13:48: error: model.decoder.block.normalization.epsilon: must be > 0, "
      "found 0\n");
}

TEST(Errors, NumbersMustBeFinite) {
  EXPECT_EQ(
      errors(replace(kModel, "{type: rms_norm}\n  head", "{type: rms_norm, epsilon: inf}\n  head")),
      "test.yaml:13:48: error: model.decoder.block.normalization.epsilon: must be a finite "
      "number, found inf\n");
}

// --- required fields ---

TEST(Errors, MissingRequiredField) {
  EXPECT_EQ(errors(replace(kModel, "{type: attention, rotary: {type: none}, heads: 4}", "{type: attention, rotary: {type: none}}")),
            "test.yaml:11:14: error: model.decoder.block.mixer: missing required field 'heads'\n");
}

TEST(Errors, NullRequiredFieldIsMissing) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: null}")),
            "test.yaml:11:61: error: model.decoder.block.mixer: missing required field 'heads'\n");
}

// --- cross-field rules (validation after resolution) ---

TEST(Errors, HeadsNotDivisibleByHeadGroups) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 4, head_groups: 3}")),
            "test.yaml:11:77: error: model.decoder.block.mixer.head_groups: heads (4) must be "
            "divisible by head_groups (3)\n");
}

TEST(Errors, HiddenSizeNotDivisibleByHeads) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 5}")),
            "test.yaml:11:61: error: model.decoder.block.mixer.heads: hidden_size 64 is not "
            "divisible by heads 5; set head_size explicitly\n");
}

TEST(Errors, SlidingWindowNeedsCausal) {
  EXPECT_EQ(errors(replace(kModel, "heads: 4}", "heads: 4, causal: false, window_size: 8}")),
            "test.yaml:11:92: error: model.decoder.block.mixer.window_size: sliding windows need "
            "causal: true\n");
}

constexpr const char* kPattern = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: pattern
    blocks:
      a:
        type: transformer
        mixer: {type: attention, rotary: {type: none}, heads: 4}
        mlp: {type: mlp}
        normalization: {type: rms_norm}
      m:
        type: transformer
        mixer: {type: mamba}
        mlp: {type: mlp}
        normalization: {type: rms_norm}
    pattern: [a, m]
  head:
    normalization: {type: rms_norm}
)";

TEST(Errors, ThePatternModelIsValid) { EXPECT_EQ(errors(kPattern), ""); }

TEST(Errors, PatternNameThatDoesNotExist) {
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]", "pattern: [a, m, x]")),
            "test.yaml:19:21: error: model.decoder.pattern[2]: unknown block name 'x'; did you "
            "mean 'a'? (blocks: a, m)\n");
}

TEST(Errors, PatternStringLetterThatDoesNotExist) {
  // Marks point at the letter, inside plain and quoted strings.
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]", "pattern: amx")),
            "test.yaml:19:16: error: model.decoder.pattern[2]: unknown block name 'x'; did you "
            "mean 'a'? (blocks: a, m)\n");
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]", "pattern: \"amx\"")),
            "test.yaml:19:17: error: model.decoder.pattern[2]: unknown block name 'x'; did you "
            "mean 'a'? (blocks: a, m)\n");
}

TEST(Errors, SharedNameThatDoesNotExist) {
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]", "pattern: [a, m]\n    shared: [a, q]")),
            "test.yaml:20:17: error: model.decoder.shared[1]: unknown block name 'q'; did you "
            "mean 'a'? (blocks: a, m)\n");
}

TEST(Errors, NamedBlockNotUsedByThePattern) {
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]", "pattern: [a, a]")),
            "test.yaml:15:9: error: model.decoder.blocks.m: block 'm' is not used by the "
            "pattern\n");
}

TEST(Errors, NumLayersNotAMultipleOfThePatternLength) {
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]", "pattern: [a, m]\n    num_layers: 3")),
            "test.yaml:20:17: error: model.decoder.num_layers: must be a multiple of the "
            "pattern's length (2), found 3\n");
}

TEST(Errors, OverrideLayerOutOfRange) {
  EXPECT_EQ(errors(replace(kModel, "num_layers: 2\n",
                           "num_layers: 2\n    overrides:\n      2: {mlp: {dropout: 0.1}}\n")),
            "test.yaml:10:10: error: model.decoder.overrides.2: override for layer 2, but the "
            "sequence has 2 layers (0-1)\n");
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]",
                           "pattern: [a, m]\n    overrides:\n      7: {mlp: {dropout: 0.1}}")),
            "test.yaml:21:10: error: model.decoder.overrides.7: override for layer 7, but the "
            "sequence has 2 layers (0-1)\n");
}

TEST(Errors, SharedBlockOverridden) {
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]",
                           "pattern: [a, m]\n    shared: [a]\n    overrides:\n"
                           "      0: {mixer: {heads: 2}}")),
            "test.yaml:22:10: error: model.decoder.overrides.0: layer 0 is shared block 'a'; "
            "shared blocks cannot be overridden per layer\n");
}

TEST(Errors, MoeTopKAboveExperts) {
  EXPECT_EQ(errors(replace(kModel, "{type: mlp}",
                           "{type: moe, experts: 2, top_k: 3, intermediate_size: 8}")),
            "test.yaml:12:43: error: model.decoder.block.mlp.top_k: must be <= experts (2), "
            "found 3\n");
}

TEST(Errors, PeftTargetThatMatchesNothing) {
  EXPECT_EQ(errors(std::string(kModel) + "  peft: {type: lora, targets: [query, quey]}\n"),
            "test.yaml:16:39: error: model.peft.targets[1]: target 'quey' matches no linear "
            "layer; did you mean 'query'? (linear names: query, key, value, output, up, down)\n");
}

TEST(Errors, PeftTargetOutsideTheDecodersLayers) {
  EXPECT_EQ(errors(std::string(kModel) +
                   "  peft: {type: lora, targets: [{name: value, layers: [5, 6]}]}\n"),
            "test.yaml:16:32: error: model.peft.targets[0]: target 'value' names layers 5-6, but "
            "the decoder has 2 layers (0-1)\n");
}

TEST(Errors, PeftTargetWithAReversedRangeIsOneError) {
  EXPECT_EQ(
      errors(std::string(kModel) + "  peft: {type: lora, targets: [{name: up, layers: [1, 0]}]}\n"),
      "test.yaml:16:51: error: model.peft.targets[0].layers: expected [first, last] with "
      "first <= last\n");
}

TEST(Errors, PeftTargetThatWouldSplitASharedBlockIsOneError) {
  // `a` is at layers 0 and 2: adapting layer 0 alone would split its shared weights.
  EXPECT_EQ(errors(replace(kPattern, "pattern: [a, m]",
                           "pattern: [a, m]\n    shared: [a]\n    num_layers: 4") +
                   "  peft: {type: lora, targets: [{name: query, layers: [0, 1]}]}\n"),
            "test.yaml:24:32: error: model.peft.targets[0]: target 'query' limited to layers 0-1 "
            "would split shared block 'a' (layer 0)\n");
}

TEST(Errors, TiedHeadWithAnOutputMatrix) {
  EXPECT_EQ(errors(std::string(kModel) + "    tied: true\n    output: {lr_scale: 0.5}\n"),
            "test.yaml:17:13: error: model.head.output: is set but tied is true: a tied head has "
            "no output matrix\n");
}

// --- several errors at once ---

TEST(Errors, EveryIndependentParseErrorIsReportedInOneRun) {
  const std::string text = R"(version: 1
extra: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_sise: 100}
  decoder:
    type: repeat
    num_layers: 2
    block:
      type: transformer
      mixer: {type: attention, rotary: {type: none}, heads: "4"}
      mlp: {type: mlp, dropout: 2}
      normalization: {type: rms_nrom}
  head:
    tied: true
)";
  EXPECT_EQ(errors(text),
            "test.yaml:2:1: error: unknown top-level field 'extra' (valid: version, extends, "
            "model, train)\n"
            "test.yaml:6:16: error: model.embeddings: unknown field 'vocab_sise' in embeddings; "
            "did you mean 'vocab_size'? (valid: vocab_size, max_positions, word, position, "
            "scale, dropout, lr_scale)\n"
            "test.yaml:12:61: error: model.decoder.block.mixer.heads: expected an integer, found "
            "the quoted string \"4\"\n"
            "test.yaml:13:33: error: model.decoder.block.mlp.dropout: must be <= 0.999, found 2\n"
            "test.yaml:14:29: error: model.decoder.block.normalization.type: unknown "
            "normalization type 'rms_nrom'; did you mean 'rms_norm'? (valid: layer_norm, none, "
            "rms_norm)\n"
            "test.yaml:16:5: error: model.head: missing required field 'normalization'\n");
}

TEST(Errors, EveryIndependentRuleViolationIsReportedInOneRun) {
  const std::string text = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: pattern
    blocks:
      a:
        type: transformer
        mixer: {type: attention, rotary: {type: none}, heads: 4, head_groups: 3}
        mlp: {type: moe, experts: 2, top_k: 3, intermediate_size: 8}
        normalization: {type: rms_norm}
    pattern: [a, b]
    num_layers: 3
  head:
    normalization: {type: rms_norm}
    tied: true
    output: {}
  peft: {type: lora, targets: [quey]}
)";
  EXPECT_EQ(errors(text),
            "test.yaml:11:79: error: model.decoder.blocks.a.mixer.head_groups: heads (4) must be "
            "divisible by head_groups (3)\n"
            "test.yaml:12:45: error: model.decoder.blocks.a.mlp.top_k: must be <= experts (2), "
            "found 3\n"
            "test.yaml:14:18: error: model.decoder.pattern[1]: unknown block name 'b'; did you "
            "mean 'a'? (blocks: a)\n"
            "test.yaml:15:17: error: model.decoder.num_layers: must be a multiple of the "
            "pattern's length (2), found 3\n"
            "test.yaml:19:13: error: model.head.output: is set but tied is true: a tied head has "
            "no output matrix\n"
            "test.yaml:20:32: error: model.peft.targets[0]: target 'quey' matches no linear "
            "layer; did you mean 'query'? (linear names: query, key, value, output, router, gate, "
            "up, down)\n");
}

TEST(Errors, ParseErrorsAndRuleViolationsComeTogetherWithoutKnockOnErrors) {
  const std::string text = R"(version: 1
model:
  type: language_model
  hidden_size: 60
  embeddings: {vocab_size: 0}
  decoder:
    type: repeat
    num_layers: 2
    block:
      type: transformer
      mixer: {type: attention, rotary: {type: none}, heads: 8, head_groups: 3}
      mlp: {type: mlp, dropout: 2, up: {weight_initialization: {type: uniform, low: a, high: -1}}}
      normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
    tied: true
    output: {}
)";
  // The uniform's `high: -1` is below the default `low` only because `low` failed to parse:
  // that knock-on error is not reported.
  EXPECT_EQ(errors(text),
            "test.yaml:5:28: error: model.embeddings.vocab_size: must be >= 1, found 0\n"
            "test.yaml:11:61: error: model.decoder.block.mixer.heads: hidden_size 60 is not "
            "divisible by heads 8; set head_size explicitly\n"
            "test.yaml:11:77: error: model.decoder.block.mixer.head_groups: heads (8) must be "
            "divisible by head_groups (3)\n"
            "test.yaml:12:33: error: model.decoder.block.mlp.dropout: must be <= 0.999, found 2\n"
            "test.yaml:12:85: error: model.decoder.block.mlp.up.weight_initialization.low: "
            "expected a number, found 'a'\n"
            "test.yaml:17:13: error: model.head.output: is set but tied is true: a tied head has "
            "no output matrix\n");
}

TEST(Errors, AnErrorInARepeatedBlockIsReportedOnceNotPerLayer) {
  const std::string text =
      replace(replace(kModel, "heads: 4}", "heads: 4, haeds: 3}"), "num_layers: 2\n",
              "num_layers: 2\n    overrides:\n      1: {mlp: {dropout: 0.1}}\n");
  EXPECT_EQ(errors(text),
            std::string("test.yaml:13:64: error: model.decoder.block.mixer: unknown field "
                        "'haeds' in attention mixer; did you mean 'heads'? (valid: ") +
                kAttentionFields + ")\n");
}

TEST(Errors, AnErrorInAnAliasedMappingIsReportedOnce) {
  const std::string text = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: fixed
    blocks:
      - type: transformer
        mixer: &attn {type: attention, rotary: {type: none}, heads: 4, head_groups: 3}
        mlp: {type: mlp}
        normalization: {type: rms_norm}
      - type: transformer
        mixer: *attn
        mlp: {type: mlp}
        normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
)";
  EXPECT_EQ(errors(text),
            "test.yaml:10:85: error: model.decoder.blocks[0].mixer.head_groups: heads (4) must be "
            "divisible by head_groups (3)\n");
}

}  // namespace
}  // namespace blocks
