#include "tests/support/model_text.h"

namespace {

using blocks::testing::block_of;
using blocks::testing::errors;
using blocks::testing::ModelText;
using blocks::testing::resolved;

TEST(Peft, WithoutPeftNothingIsAdapted) {
  const auto a = block_of(resolved(ModelText{}.text()))["mixer"];
  for (const char* name : {"query", "key", "value", "output"}) {
    EXPECT_EQ(a[name]["apply_peft"], false) << name;
    EXPECT_EQ(a[name]["trainable"], true) << name;
  }
}

TEST(Peft, LoraDefaultsToQueryAndValueAndFreezesBaseWeights) {
  ModelText m;
  m.model_extra = "  peft: {type: lora, rank: 4}\n";
  const auto doc = resolved(m.text());
  const auto a = block_of(doc)["mixer"];
  EXPECT_EQ(a["query"]["apply_peft"], true);
  EXPECT_EQ(a["key"]["apply_peft"], false);
  EXPECT_EQ(a["value"]["apply_peft"], true);
  EXPECT_EQ(a["output"]["apply_peft"], false);
  EXPECT_EQ(a["query"]["trainable"], false);
  EXPECT_EQ(doc["model"]["embeddings"]["word"]["trainable"], false);
  EXPECT_EQ(doc["model"]["peft"]["alpha"], 16.0);
  EXPECT_FALSE(doc["model"]["peft"].contains("targets"));
}

TEST(Peft, TargetsReplaceTheDefaults) {
  ModelText m;
  m.model_extra = "  peft: {type: lora, targets: [key, mlp]}\n";
  const auto block = block_of(resolved(m.text()));
  EXPECT_EQ(block["mixer"]["query"]["apply_peft"], false);
  EXPECT_EQ(block["mixer"]["key"]["apply_peft"], true);
  for (const char* name : {"gate", "up", "down"}) EXPECT_EQ(block["mlp"][name]["apply_peft"], true);
}

TEST(Peft, TargetErrors) {
  ModelText m;
  m.model_extra =
      "  peft: {type: lora, targets: [qurey, {name: up, layers: [1, 5]}, "
      "{name: up, layers: [1, 0]}]}\n";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:6:32: error: model.peft.targets[0]: target 'qurey' matches no linear "
            "layer; did you mean 'query'? (linear names: query, key, value, output, gate, up, "
            "down)\n"
            "test.yaml:6:39: error: model.peft.targets[1]: target 'up' names layers 1-5, but the "
            "decoder has 2 layers (0-1)\n"
            "test.yaml:6:86: error: model.peft.targets[2].layers: expected [first, last] with "
            "first <= last\n");
}

}  // namespace

namespace {

// PEFT's modules_to_save (peft/tuners/tuners_utils.py: the listed modules train in full and get
// no adapters): the covered part's linears train, keep no adapter, and the rest stays frozen.
TEST(Peft, ModulesToSaveTrainInFullWithoutAdapters) {
  ModelText m;
  m.model_extra =
      "  peft: {type: lora, rank: 4, targets: [query, up], modules_to_save: [{name: mlp, "
      "layers: [1, 1]}]}\n";
  const auto doc = resolved(m.text());
  const auto& decoder = doc["model"]["decoder"];
  ASSERT_TRUE(decoder["overrides"].contains("1")) << decoder.dump(2);
  const auto& saved = decoder["overrides"]["1"]["mlp"];
  const auto& adapted = decoder["block"]["mlp"];
  for (const char* name : {"gate", "up", "down"}) {
    EXPECT_EQ(saved[name]["apply_peft"], false) << name;
    EXPECT_EQ(saved[name]["trainable"], true) << name;
    EXPECT_EQ(adapted[name]["trainable"], false) << name;
  }
  EXPECT_EQ(adapted["up"]["apply_peft"], true);
  EXPECT_EQ(decoder["overrides"]["1"]["mixer"]["query"]["apply_peft"], true);
  EXPECT_EQ(decoder["overrides"]["1"]["mixer"]["query"]["trainable"], false);
  EXPECT_EQ(doc["model"]["head"]["normalization"]["trainable"], false);
}

TEST(Peft, ModulesToSaveThatMatchNothing) {
  ModelText m;
  m.model_extra = "  peft: {type: lora, modules_to_save: [hed, {name: mlp, layers: [2, 3]}]}\n";
  EXPECT_EQ(errors(m.text()),
            "test.yaml:6:40: error: model.peft.modules_to_save[0]: module 'hed' to train in full "
            "matches nothing (a field, kind or type name on a path of the model, such as head or "
            "mlp)\n"
            "test.yaml:6:45: error: model.peft.modules_to_save[1]: module 'mlp' to train in full "
            "matches nothing in layers 2-3 (a field, kind or type name on a path of the model, "
            "such as head or mlp)\n");
}

}  // namespace
