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
