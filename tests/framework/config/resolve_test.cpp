// Resolution: values that flow from parents, lr-scale products, shortcuts, PEFT flags,
// layer-ranged targets, idempotence of the resolved dump, and diffs of resolved configs.
#include "framework/config/resolve.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "blocks/registry.h"
#include "framework/config/diff.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"
#include "tests/support/model_text.h"

namespace blocks {
namespace {

using config::Diagnostics;
using config::Document;
using config::Json;

constexpr const char* kModel = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: repeat
    num_layers: 4
    block:
      type: transformer
      mixer: {type: attention, rotary: {type: none}, heads: 4}
      mlp: {type: mlp}
      normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
)";

using blocks::testing::replace;

Document load(const std::string& text) { return blocks::testing::document(text); }

// The resolved model as JSON.
Json resolved(const std::string& text) { return load(text).dump()["model"]; }

// Every key that occurs anywhere in `j`.
void collect_keys(const Json& j, std::set<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      out.insert(k);
      collect_keys(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_keys(v, out);
  }
}

// --- values that flow from parents ---

TEST(Resolve, HiddenSizeFlowsToHeadSizeSoftmaxScaleAndMlpWidth) {
  Json m = resolved(kModel);
  Json& mixer = m["decoder"]["block"]["mixer"];
  EXPECT_EQ(mixer["head_groups"], 4);
  EXPECT_EQ(mixer["head_size"], 16);
  EXPECT_EQ(mixer["softmax_scale"], 0.25);
  EXPECT_EQ(mixer["rotary"], Json({{"type", "none"}}));
  EXPECT_EQ(mixer["qk_norm"], Json({{"type", "none"}}));
  EXPECT_EQ(m["decoder"]["block"]["mlp"]["intermediate_size"], 256);
  // mlp_normalization defaults to the block's normalization.
  EXPECT_EQ(m["decoder"]["block"]["mlp_normalization"], m["decoder"]["block"]["normalization"]);
}

TEST(Resolve, ExplicitValuesWinOverWhatFlowsDown) {
  Json mixer = resolved(
      replace(kModel, "heads: 4}", "heads: 4, head_size: 8}"))["decoder"]["block"]["mixer"];
  EXPECT_EQ(mixer["head_size"], 8);
  EXPECT_DOUBLE_EQ(mixer["softmax_scale"].get<double>(), 1.0 / std::sqrt(8.0));
  Json mixer2 = resolved(
      replace(kModel, "heads: 4}", "heads: 4, softmax_scale: 1.0}"))["decoder"]["block"]["mixer"];
  EXPECT_EQ(mixer2["head_size"], 16);
  EXPECT_EQ(mixer2["softmax_scale"], 1.0);
}

TEST(Resolve, HiddenSizeReachesMambaDtRank) {
  Json mixer = resolved(replace(replace(kModel, "hidden_size: 64", "hidden_size: 72"),
                                "{type: attention, rotary: {type: none}, heads: 4}",
                                "{type: mamba}"))["decoder"]["block"]["mixer"];
  EXPECT_EQ(mixer["dt_rank"], 5);  // ceil(72 / 16)
}

// --- lr scales ---

constexpr const char* kScaled = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  lr_scale: 0.5
  embeddings: {vocab_size: 100, lr_scale: 0.25}
  decoder:
    type: repeat
    num_layers: 4
    lr_scale: 0.8
    block:
      type: transformer
      lr_scale: 0.5
      mixer: {type: attention, rotary: {type: none}, heads: 4, lr_scale: 2.0, output: {lr_scale: 0.25}}
      mlp: {type: mlp, lr_scale: 0.0}
      normalization: {type: rms_norm}
    overrides:
      3: {mixer: {query: {lr_scale: 3.0}}}
  head:
    normalization: {type: rms_norm, lr_scale: 4.0}
    tied: false
    lr_scale: 0.5
)";

TEST(Resolve, LrScalesMultiplyDownTheTree) {
  Json m = resolved(kScaled);
  Json& mixer = m["decoder"]["block"]["mixer"];
  // model 0.5 x decoder 0.8 x block 0.5 x mixer 2.0 = 0.4
  EXPECT_DOUBLE_EQ(mixer["query"]["effective_lr_scale"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(mixer["key"]["effective_lr_scale"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(mixer["output"]["effective_lr_scale"].get<double>(), 0.1);  // x 0.25
  EXPECT_EQ(mixer["output"]["lr_scale"], 0.25);
  EXPECT_DOUBLE_EQ(m["decoder"]["block"]["normalization"]["effective_lr_scale"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(m["embeddings"]["word"]["effective_lr_scale"].get<double>(), 0.125);
  EXPECT_DOUBLE_EQ(m["head"]["output"]["effective_lr_scale"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(m["head"]["normalization"]["effective_lr_scale"].get<double>(), 1.0);
  // The per-layer override multiplies on top of the same chain.
  Json& layer3 = m["decoder"]["overrides"]["3"]["mixer"];
  EXPECT_DOUBLE_EQ(layer3["query"]["effective_lr_scale"].get<double>(), 1.2);
  EXPECT_DOUBLE_EQ(layer3["key"]["effective_lr_scale"].get<double>(), 0.4);
  EXPECT_TRUE(layer3["query"]["trainable"].get<bool>());
}

TEST(Resolve, ZeroLrScaleFreezesEverythingBelow) {
  Json m = resolved(kScaled);
  Json& mlp = m["decoder"]["block"]["mlp"];
  for (const char* linear : {"up", "down"}) {
    EXPECT_EQ(mlp[linear]["effective_lr_scale"], 0.0) << linear;
    EXPECT_FALSE(mlp[linear]["trainable"].get<bool>()) << linear;
  }
  EXPECT_TRUE(m["decoder"]["block"]["mixer"]["query"]["trainable"].get<bool>());

  Json frozen = resolved(
      replace(kModel, "num_layers: 4\n", "num_layers: 4\n    overrides: {0: {lr_scale: 0}}\n"));
  Json& layer0 = frozen["decoder"]["overrides"]["0"];
  for (const char* linear : {"query", "key", "value", "output"})
    EXPECT_FALSE(layer0["mixer"][linear]["trainable"].get<bool>()) << linear;
  EXPECT_FALSE(layer0["normalization"]["trainable"].get<bool>());
  EXPECT_TRUE(frozen["decoder"]["block"]["mixer"]["query"]["trainable"].get<bool>());
}

// --- shortcuts ---

TEST(Resolve, ShortcutsBecomePerLinearValuesAndVanish) {
  const std::string text = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  add_linear_biases: true
  init_std: 0.01
  embeddings: {vocab_size: 100}
  decoder:
    type: fixed
    blocks:
      - type: transformer
        mixer: {type: attention, rotary: {type: none}, heads: 4, query: {bias: false}}
        mlp: {type: moe, experts: 4, intermediate_size: 32}
        normalization: {type: rms_norm}
      - type: transformer
        add_linear_biases: false
        init_std: 0.5
        mixer: {type: attention, rotary: {type: none}, heads: 4}
        mlp: {type: mlp}
        normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
)";
  Json m = resolved(text);
  Json& first = m["decoder"]["blocks"][0];
  Json& second = m["decoder"]["blocks"][1];
  EXPECT_FALSE(first["mixer"]["query"]["bias"].get<bool>());  // explicit wins
  EXPECT_TRUE(first["mixer"]["key"]["bias"].get<bool>());
  EXPECT_TRUE(first["mixer"]["output"]["bias"].get<bool>());
  EXPECT_FALSE(first["mlp"]["router"]["bias"].get<bool>());  // routers never take the shortcut
  EXPECT_TRUE(first["mlp"]["up"]["bias"].get<bool>());
  EXPECT_EQ(first["mixer"]["key"]["weight_initialization"],
            Json({{"type", "normal"}, {"mean", 0.0}, {"std", 0.01}, {"truncation", nullptr}}));
  EXPECT_EQ(first["mixer"]["output"]["weight_initialization"], Json({{"type", "scaled_normal"},
                                                                     {"mean", 0.0},
                                                                     {"std", 0.01},
                                                                     {"truncation", nullptr},
                                                                     {"num_layers", 2}}));
  EXPECT_EQ(m["embeddings"]["word"]["initialization"]["std"], 0.01);
  // The second block's own shortcuts win inside it.
  EXPECT_FALSE(second["mixer"]["query"]["bias"].get<bool>());
  EXPECT_FALSE(second["mlp"]["up"]["bias"].get<bool>());
  EXPECT_EQ(second["mlp"]["down"]["weight_initialization"]["std"], 0.5);

  std::set<std::string> keys;
  collect_keys(m, keys);
  EXPECT_FALSE(keys.count("add_linear_biases"));
  EXPECT_FALSE(keys.count("init_std"));
}

TEST(Resolve, WithoutShortcutsLinearsHaveNoBiasAndStdTwoHundredths) {
  Json q = resolved(kModel)["decoder"]["block"]["mixer"]["query"];
  EXPECT_FALSE(q["bias"].get<bool>());
  EXPECT_EQ(q["weight_initialization"]["std"], 0.02);
  EXPECT_EQ(q["bias_initialization"], Json({{"type", "zeros"}}));
}

// --- scaled_normal ---

TEST(Resolve, ScaledNormalNumLayersIsTheDecodersLayerCount) {
  auto layers_of = [](Json block) {
    return block["mixer"]["output"]["weight_initialization"]["num_layers"].get<int64_t>();
  };
  Json repeat = resolved(kModel);
  EXPECT_EQ(layers_of(repeat["decoder"]["block"]), 4);
  EXPECT_EQ(repeat["decoder"]["block"]["mlp"]["down"]["weight_initialization"]["num_layers"], 4);
  EXPECT_EQ(repeat["decoder"]["block"]["mlp"]["up"]["weight_initialization"]["type"], "normal");

  // A repeat of a two-block sequence: 3 x 2 = 6 layers.
  const std::string nested = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: repeat
    num_layers: 3
    block:
      type: fixed
      blocks:
        - &t {type: transformer, mixer: {type: attention, rotary: {type: none}, heads: 4}, mlp: {type: mlp}, normalization: {type: rms_norm}}
        - *t
  head:
    normalization: {type: rms_norm}
)";
  Json n = resolved(nested);
  EXPECT_EQ(layers_of(n["decoder"]["block"]["blocks"][0]), 6);
  EXPECT_EQ(layers_of(n["decoder"]["block"]["blocks"][1]), 6);

  const std::string pattern = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: pattern
    blocks:
      a: {type: transformer, mixer: {type: attention, rotary: {type: none}, heads: 4}, mlp: {type: mlp}, normalization: {type: rms_norm}}
    pattern: aa
    num_layers: 10
  head:
    normalization: {type: rms_norm}
)";
  EXPECT_EQ(layers_of(resolved(pattern)["decoder"]["blocks"]["a"]), 10);
}

// --- PEFT ---

TEST(Resolve, LoraDefaultsToQueryAndValueAndFreezesBaseWeights) {
  Json m = resolved(std::string(kModel) + "  peft: {type: lora, rank: 4}\n");
  Json& mixer = m["decoder"]["block"]["mixer"];
  EXPECT_TRUE(mixer["query"]["apply_peft"].get<bool>());
  EXPECT_FALSE(mixer["key"]["apply_peft"].get<bool>());
  EXPECT_TRUE(mixer["value"]["apply_peft"].get<bool>());
  EXPECT_FALSE(mixer["output"]["apply_peft"].get<bool>());
  EXPECT_FALSE(m["decoder"]["block"]["mlp"]["up"]["apply_peft"].get<bool>());
  for (const char* linear : {"query", "key", "value", "output"})
    EXPECT_FALSE(mixer[linear]["trainable"].get<bool>()) << linear;
  EXPECT_FALSE(m["embeddings"]["word"]["trainable"].get<bool>());
  EXPECT_EQ(m["peft"], Json({{"type", "lora"},
                             {"rank", 4},
                             {"alpha", 16.0},
                             {"dropout", 0.0},
                             {"allow_frozen_targets", false},
                             {"modules_to_save", nullptr}}));
}

TEST(Resolve, LoraTargetsSetApplyPeftOnWhatTheyMatch) {
  Json m = resolved(std::string(kModel) + "  peft: {type: lora, targets: [key, mlp]}\n");
  Json& block = m["decoder"]["block"];
  EXPECT_FALSE(block["mixer"]["query"]["apply_peft"].get<bool>());
  EXPECT_TRUE(block["mixer"]["key"]["apply_peft"].get<bool>());
  EXPECT_FALSE(block["mixer"]["value"]["apply_peft"].get<bool>());
  EXPECT_TRUE(block["mlp"]["up"]["apply_peft"].get<bool>());
  EXPECT_TRUE(block["mlp"]["down"]["apply_peft"].get<bool>());
  // Targets are a shortcut: they vanish from the resolved config.
  EXPECT_FALSE(m["peft"].contains("targets"));
  // A type name matches too.
  Json t = resolved(std::string(kModel) + "  peft: {type: lora, targets: [attention]}\n");
  for (const char* linear : {"query", "key", "value", "output"})
    EXPECT_TRUE(t["decoder"]["block"]["mixer"][linear]["apply_peft"].get<bool>()) << linear;
  EXPECT_FALSE(t["decoder"]["block"]["mlp"]["up"]["apply_peft"].get<bool>());
}

TEST(Resolve, LayerRangedTargetsMakeOverridesForThoseLayersOnly) {
  const std::string text =
      replace(kModel, "num_layers: 4\n",
              "num_layers: 4\n    overrides:\n      2: {mlp: {intermediate_size: 32}}\n") +
      "  peft: {type: lora, targets: [query, {name: mlp, layers: [1, 2]}]}\n";
  Json m = resolved(text);
  Json& overrides = m["decoder"]["overrides"];
  std::vector<std::string> keys;
  for (const auto& [k, v] : overrides.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"1", "2"}));
  EXPECT_FALSE(m["decoder"]["block"]["mlp"]["up"]["apply_peft"].get<bool>());
  EXPECT_TRUE(m["decoder"]["block"]["mixer"]["query"]["apply_peft"].get<bool>());
  for (const char* layer : {"1", "2"}) {
    EXPECT_TRUE(overrides[layer]["mlp"]["up"]["apply_peft"].get<bool>()) << layer;
    EXPECT_TRUE(overrides[layer]["mlp"]["down"]["apply_peft"].get<bool>()) << layer;
    EXPECT_TRUE(overrides[layer]["mixer"]["query"]["apply_peft"].get<bool>()) << layer;
    EXPECT_FALSE(overrides[layer]["mixer"]["key"]["apply_peft"].get<bool>()) << layer;
  }
  EXPECT_EQ(overrides["1"]["mlp"]["intermediate_size"], 256);  // a copy of the block
  EXPECT_EQ(overrides["2"]["mlp"]["intermediate_size"], 32);   // the user's override, kept
}

TEST(Resolve, LayerRangedTargetCoveringEveryPositionOfASharedBlockMatchesIt) {
  const std::string text = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: pattern
    blocks:
      a: {type: transformer, mixer: {type: attention, rotary: {type: none}, heads: 4}, mlp: {type: mlp}, normalization: {type: rms_norm}}
      m: {type: transformer, mixer: {type: mamba}, mlp: {type: mlp}, normalization: {type: rms_norm}}
    pattern: [a, m, m, a]
    shared: [a]
  peft: {type: lora, targets: [{name: query, layers: [0, 3]}, {name: output, layers: [1, 2]}]}
  head:
    normalization: {type: rms_norm}
)";
  Json m = resolved(text);
  EXPECT_TRUE(m["decoder"]["blocks"]["a"]["mixer"]["query"]["apply_peft"].get<bool>());
  EXPECT_FALSE(m["decoder"]["blocks"]["a"]["mixer"]["output"]["apply_peft"].get<bool>());
  EXPECT_FALSE(m["decoder"]["blocks"]["m"]["mixer"]["output"]["apply_peft"].get<bool>());
  std::vector<std::string> keys;
  for (const auto& [k, v] : m["decoder"]["overrides"].items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"1", "2"}));  // the mamba layers, not shared
  EXPECT_TRUE(m["decoder"]["overrides"]["1"]["mixer"]["output"]["apply_peft"].get<bool>());
}

// --- idempotence ---

// Resolving the resolved dump again changes nothing.
void expect_idempotent(const Document& doc, const std::string& name) {
  const std::string first = config::to_yaml(doc.dump());
  Diagnostics d;
  auto again = config::load_document_text(first, name + " (resolved)", registry(), d);
  ASSERT_TRUE(again) << name << "\n" << d.format();
  EXPECT_EQ(config::to_yaml(again->dump()), first) << name;
}

TEST(Resolve, ResolvingTheDumpAgainGivesTheSameDump) {
  const std::vector<std::string> texts = {
      kModel,
      kScaled,
      std::string(kModel) + "  add_linear_biases: true\n  init_std: 0.03\n",
      std::string(kModel) + "  peft: {type: lora, targets: [query, {name: mlp, layers: [0, 1]}]}\n",
      replace(kModel, "{type: attention, rotary: {type: none}, heads: 4}", "{type: mamba}"),
  };
  for (size_t i = 0; i < texts.size(); ++i)
    expect_idempotent(load(texts[i]), "text " + std::to_string(i));
}

TEST(Resolve, EveryConfigOfTheZooIsIdempotent) {
  namespace fs = std::filesystem;
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(BLOCKS_SOURCE_DIR) / "configs")) {
    if (entry.path().extension() != ".yaml") continue;
    Diagnostics d;
    auto doc = config::load_document(entry.path().string(), registry(), d);
    ASSERT_TRUE(doc) << d.format();
    expect_idempotent(*doc, entry.path().filename().string());
    ++count;
  }
  EXPECT_GE(count, 5u);
}

// --- diff ---

TEST(Diff, ArchitectureDifferencesComeFirst) {
  const Document a = load(kModel);
  const Document b = load(replace(replace(kModel, "heads: 4}", "heads: 1, lr_scale: 0.5}"),
                                  "{vocab_size: 100}", "{vocab_size: 100, dropout: 0.1}"));
  EXPECT_EQ(config::format_diff(config::diff(a, b)),
            "architecture:\n"
            "  model.decoder.block.mixer.heads: 4 -> 1\n"
            "  model.decoder.block.mixer.head_groups: 4 -> 1\n"
            "  model.decoder.block.mixer.head_size: 16 -> 64\n"
            "  model.decoder.block.mixer.softmax_scale: 0.25 -> 0.125\n"
            "optional:\n"
            "  model.embeddings.dropout: 0.0 -> 0.1\n"
            "  model.decoder.block.mixer.lr_scale: 1.0 -> 0.5\n"
            "derived:\n"
            "  model.decoder.block.mixer.query.effective_lr_scale: 1.0 -> 0.5\n"
            "  model.decoder.block.mixer.key.effective_lr_scale: 1.0 -> 0.5\n"
            "  model.decoder.block.mixer.value.effective_lr_scale: 1.0 -> 0.5\n"
            "  model.decoder.block.mixer.output.effective_lr_scale: 1.0 -> 0.5\n");
  EXPECT_EQ(config::format_diff(config::diff(a, a)), "");
}

// A field set on one side only is listed by its leaves, each under the hint of its field (an
// optional weight's initialization is optional, not architecture).
TEST(Diff, FieldsPresentOnOneSideOnly) {
  const Document a = load(kModel);
  const Document b =
      load(replace(kModel, "{vocab_size: 100}", "{vocab_size: 100, max_positions: 8}"));
  EXPECT_EQ(config::format_diff(config::diff(a, b)),
            "architecture:\n"
            "  model.embeddings.max_positions: null -> 8\n"
            "optional:\n"
            "  model.embeddings.position.initialization.type: (absent) -> \"normal\"\n"
            "  model.embeddings.position.initialization.mean: (absent) -> 0.0\n"
            "  model.embeddings.position.initialization.std: (absent) -> 0.02\n"
            "  model.embeddings.position.initialization.truncation: (absent) -> null\n"
            "  model.embeddings.position.lr_scale: (absent) -> 1.0\n"
            "derived:\n"
            "  model.embeddings.position.effective_lr_scale: (absent) -> 1.0\n"
            "  model.embeddings.position.trainable: (absent) -> true\n");
}

}  // namespace
}  // namespace blocks
