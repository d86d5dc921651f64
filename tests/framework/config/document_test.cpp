// Loading whole documents: `extends` composition, include cycles, --set overrides, versions
// and migrations, top-level keys.
#include "framework/config/document.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "blocks/mixers/attention.h"
#include "blocks/mixers/mamba.h"
#include "blocks/mlps/mlp.h"
#include "blocks/models/language_model.h"
#include "blocks/registry.h"
#include "blocks/sequences/fixed.h"
#include "blocks/sequences/repeat.h"
#include "blocks/sequences/transformer.h"
#include "tests/support/model_text.h"
#include "tests/support/temp_dir.h"

namespace blocks {
namespace {

namespace fs = std::filesystem;
using config::Diagnostics;
using config::Document;
using config::LoadOptions;
using config::Node;

constexpr const char* kBase = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: repeat
    num_layers: 2
    block:
      type: transformer
      mixer: {type: attention, rotary: {type: none}, heads: 4, window_size: 16}
      mlp: {type: mlp}
      normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
)";

using blocks::testing::block_of;
using blocks::testing::decoder_of;
using blocks::testing::model_of;
using blocks::testing::TempDir;

std::optional<Document> load_text(const std::string& text, Diagnostics& d,
                                  const LoadOptions& options = {}) {
  return config::load_document_text(text, "test.yaml", registry(), d, options);
}

// --- extends ---

TEST(Extends, DeepMergesTheChildOntoItsBase) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const auto child = dir.write("child.yaml", R"(version: 1
extends: base.yaml
model:
  hidden_size: 128
  decoder:
    num_layers: 4
    block:
      mixer: {head_groups: 2}
)");
  Diagnostics d;
  auto doc = config::load_document(child, registry(), d);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(model_of(*doc).hidden_size, 128);
  EXPECT_EQ(decoder_of(*doc).num_layers, 4);
  const auto* mixer = block_of(*doc).mixer.as<AttentionConfig>();
  ASSERT_NE(mixer, nullptr);
  EXPECT_EQ(mixer->heads, 4);  // from the base
  EXPECT_EQ(mixer->head_groups, 2);
  EXPECT_EQ(mixer->window_size, 16);  // from the base
  EXPECT_EQ(mixer->head_size, 32);    // resolved from the child's hidden_size
  EXPECT_EQ(block_of(*doc).mlp.as<MlpLayerConfig>()->intermediate_size, 512);
  // The marks of merged values point to the file that wrote them.
  EXPECT_EQ(mixer->mark_of("heads").where(), dir.at("base.yaml") + ":11:61");
  EXPECT_EQ(mixer->mark_of("head_groups").where(), dir.at("child.yaml") + ":8:28");
}

TEST(Extends, ChangingATypeReplacesTheSlotSoOldFieldsDoNotCreepIn) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const auto child = dir.write("child.yaml", R"(version: 1
extends: base.yaml
model:
  decoder:
    block:
      mixer: {type: mamba, state_size: 8}
)");
  Diagnostics d;
  auto doc = config::load_document(child, registry(), d);
  ASSERT_TRUE(doc) << d.format();  // `heads` and `window_size` would be unknown mamba fields
  const auto* mamba = block_of(*doc).mixer.as<MambaConfig>();
  ASSERT_NE(mamba, nullptr);
  EXPECT_EQ(mamba->state_size, 8);
  EXPECT_EQ(mamba->conv_kernel_size, 4);
}

TEST(Extends, AListOfBasesMergesInOrderAndPathsAreRelativeToEachFile) {
  TempDir dir;
  dir.write("bases/root.yaml", kBase);
  dir.write("bases/wide.yaml", "version: 1\nextends: root.yaml\nmodel: {hidden_size: 256}\n");
  dir.write("deep.yaml", "version: 1\nmodel: {hidden_size: 512, decoder: {num_layers: 6}}\n");
  const auto child = dir.write("child.yaml",
                               "version: 1\nextends: [bases/wide.yaml, deep.yaml]\n"
                               "model: {decoder: {num_layers: 3}}\n");
  Diagnostics d;
  auto doc = config::load_document(child, registry(), d);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(model_of(*doc).hidden_size, 512);  // the later base wins
  EXPECT_EQ(decoder_of(*doc).num_layers, 3);   // the child wins over every base
}

TEST(Extends, ADiamondIsNotACycle) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  dir.write("left.yaml", "version: 1\nextends: base.yaml\nmodel: {hidden_size: 32}\n");
  dir.write("right.yaml", "version: 1\nextends: base.yaml\n");
  const auto top = dir.write("top.yaml", "version: 1\nextends: [left.yaml, right.yaml]\n");
  Diagnostics d;
  auto doc = config::load_document(top, registry(), d);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(model_of(*doc).hidden_size, 64);  // right.yaml brings the base back
}

TEST(Extends, IncludeCycleIsReportedWithTheChain) {
  TempDir dir;
  const auto a = dir.write("a.yaml", "version: 1\nextends: b.yaml\n");
  dir.write("b.yaml", "version: 1\nextends: a.yaml\n");
  Diagnostics d;
  EXPECT_FALSE(config::load_document(a, registry(), d));
  EXPECT_EQ(d.format(), dir.at("b.yaml") +
                            ":2:10: error: extends: include cycle: a.yaml -> b.yaml -> a.yaml\n");
}

TEST(Extends, SelfIncludeAndCyclesBelowTheEntryFile) {
  TempDir dir;
  const auto self = dir.write("self.yaml", "version: 1\nextends: self.yaml\n");
  Diagnostics d;
  EXPECT_FALSE(config::load_document(self, registry(), d));
  EXPECT_EQ(d.format(),
            dir.at("self.yaml") + ":2:10: error: extends: include cycle: self.yaml -> self.yaml\n");

  const auto entry = dir.write("entry.yaml", "version: 1\nextends: a.yaml\n");
  dir.write("a.yaml", "version: 1\nextends: b.yaml\n");
  dir.write("b.yaml", "version: 1\nextends: c.yaml\n");
  dir.write("c.yaml", "version: 1\nextends: [base.yaml, a.yaml]\n");
  dir.write("base.yaml", kBase);
  Diagnostics d2;
  EXPECT_FALSE(config::load_document(entry, registry(), d2));
  EXPECT_EQ(d2.format(), dir.at("c.yaml") +
                             ":2:22: error: extends: include cycle: a.yaml -> b.yaml -> c.yaml "
                             "-> a.yaml\n");
}

TEST(Extends, MissingBaseIsReportedWhereItIsNamed) {
  TempDir dir;
  const auto child = dir.write("child.yaml", "version: 1\nextends: nope.yaml\nmodel: {}\n");
  Diagnostics d;
  EXPECT_FALSE(config::load_document(child, registry(), d));
  EXPECT_EQ(d.format(), dir.at("child.yaml") + ":2:10: error: extends: cannot open " +
                            dir.at("nope.yaml") + ": No such file or directory\n");
}

TEST(Extends, BasesMustBePaths) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const auto child = dir.write("child.yaml", "version: 1\nextends: [base.yaml, {a: 1}]\n");
  Diagnostics d;
  EXPECT_FALSE(config::load_document(child, registry(), d));
  EXPECT_EQ(d.format(), dir.at("child.yaml") +
                            ":2:22: error: extends: expected a file path, found a mapping\n");
}

TEST(Extends, NeedsAFileOnDisk) {
  Diagnostics d;
  EXPECT_FALSE(load_text("version: 1\nextends: base.yaml\n", d));
  EXPECT_EQ(d.format(),
            "test.yaml:2:10: error: extends: 'extends' needs a file on disk; load this document "
            "with load_document\n");
}

// --- errors of any kind make the load fail ---

TEST(LoadDocument, LoaderErrorsMakeTheLoadFailButLaterErrorsAreStillReported) {
  TempDir dir;
  const auto path = dir.write("dup.yaml", std::string(kBase) + "version: 1\n");
  Diagnostics d;
  EXPECT_FALSE(config::load_document(path, registry(), d));
  EXPECT_EQ(d.format(), path + ":16:1: error: duplicate key 'version' (first written at line 1)\n");

  const auto both = dir.write(
      "both.yaml", "version: 1\nversion: 1\nmodel: {type: language_model, hidden_size: 0}\n");
  Diagnostics d2;
  EXPECT_FALSE(config::load_document(both, registry(), d2));
  EXPECT_EQ(d2.format(), both + ":2:1: error: duplicate key 'version' (first written at line 1)\n" +
                             both + ":3:8: error: model: missing required field 'embeddings'\n" +
                             both + ":3:8: error: model: missing required field 'decoder'\n" +
                             both + ":3:8: error: model: missing required field 'head'\n" + both +
                             ":3:44: error: model.hidden_size: must be >= 1, found 0\n");

  Diagnostics d3;
  EXPECT_FALSE(load_text(std::string(kBase) + "version: 1\n", d3));
  EXPECT_EQ(d3.format(),
            "test.yaml:16:1: error: duplicate key 'version' (first written at line 1)\n");
}

TEST(LoadDocument, EarlierDiagnosticsOfOtherFilesDoNotFailThisOne) {
  Diagnostics d;
  d.error({}, "", "an earlier file's problem");
  auto doc = load_text(kBase, d);
  EXPECT_TRUE(doc);
  EXPECT_EQ(d.size(), 1u);
  TempDir dir;
  EXPECT_TRUE(config::load_document(dir.write("base.yaml", kBase), registry(), d));
  EXPECT_EQ(d.size(), 1u);
}

// --- --set ---

TEST(Set, OverridesValuesAfterComposition) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const auto child = dir.write("child.yaml", "version: 1\nextends: base.yaml\n");
  LoadOptions options;
  options.sets = {"model.hidden_size=128", "model.decoder.block.mixer={heads: 8, head_groups: 2}",
                  "model.decoder.block.mixer.window_size="};
  Diagnostics d;
  auto doc = config::load_document(child, registry(), d, options);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(model_of(*doc).hidden_size, 128);
  const auto* mixer = block_of(*doc).mixer.as<AttentionConfig>();
  EXPECT_EQ(mixer->heads, 8);
  EXPECT_EQ(mixer->head_groups, 2);
  EXPECT_EQ(mixer->head_size, 16);
  EXPECT_FALSE(mixer->window_size);  // an empty value is null
  EXPECT_EQ(mixer->mark_of("heads").where(), "<command line>:2:35");
}

TEST(Set, ChangingTheTypeDropsTheOldTypesFields) {
  LoadOptions options;
  options.sets = {"model.decoder.block.mixer.type=mamba"};
  Diagnostics d;
  auto doc = load_text(kBase, d, options);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_NE(block_of(*doc).mixer.as<MambaConfig>(), nullptr);
}

TEST(Set, IndexesIntoLists) {
  const std::string text = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: fixed
    blocks:
      - {type: transformer, mixer: {type: attention, rotary: {type: none}, heads: 4}, mlp: {type: mlp}, normalization: {type: rms_norm}}
      - {type: transformer, mixer: {type: attention, rotary: {type: none}, heads: 4}, mlp: {type: mlp}, normalization: {type: rms_norm}}
  head: {normalization: {type: rms_norm}}
)";
  LoadOptions options;
  options.sets = {"model.decoder.blocks[1].mixer.heads=2"};
  Diagnostics d;
  auto doc = load_text(text, d, options);
  ASSERT_TRUE(doc) << d.format();
  const auto& blocks = model_of(*doc).decoder.as<FixedSequenceConfig>()->blocks;
  EXPECT_EQ(blocks[0].as<TransformerConfig>()->mixer.as<AttentionConfig>()->heads, 4);
  EXPECT_EQ(blocks[1].as<TransformerConfig>()->mixer.as<AttentionConfig>()->heads, 2);

  options.sets = {"model.decoder.blocks[2].mixer.heads=2"};
  Diagnostics d2;
  EXPECT_FALSE(load_text(text, d2, options));
  EXPECT_EQ(d2.format(),
            "<command line>:1:22: error: model.decoder.blocks[2].mixer.heads: no list item '2' "
            "(the list has 2 items)\n");
}

TEST(Set, ErrorsPointIntoTheCommandLine) {
  struct Case {
    std::vector<std::string> sets;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"model.hidden_size=abc"},
       "<command line>:1:19: error: model.hidden_size: expected an integer, found 'abc'\n"},
      {{"model.hidden_size=64", "model.embeddings.vocab_size=0"},
       "<command line>:2:29: error: model.embeddings.vocab_size: must be >= 1, found 0\n"},
      {{"model.hidden_size"},
       "<command line>:1:1: error: --set expects PATH=VALUE, found 'model.hidden_size'\n"},
      {{"=3"}, "<command line>:1:1: error: --set expects PATH=VALUE, found '=3'\n"},
      {{"model.embeddings=[1"},
       "<command line>:1:18: error: model.embeddings: end of sequence flow not found\n"},
      {{"model.decoder.block.mixer.hedas=3"},
       "<command line>:1:27: error: model.decoder.block.mixer: unknown field 'hedas' in "
       "attention mixer; did you mean 'heads'? (valid: heads, head_groups, head_size, rotary, "
       "causal, window_size, softmax_scale, qk_norm, dropout, query, key, value, output, "
       "lr_scale)\n"},
      {{"model.decoder.block.mixer.heads=\"8\""},
       "<command line>:1:33: error: model.decoder.block.mixer.heads: expected an integer, found "
       "the quoted string \"8\"\n"},
  };
  for (const auto& c : cases) {
    LoadOptions options;
    options.sets = c.sets;
    Diagnostics d;
    EXPECT_FALSE(load_text(kBase, d, options)) << c.sets.back();
    EXPECT_EQ(d.format(), c.expected) << c.sets.back();
  }
}

TEST(Set, WorksThroughLoadDocumentToo) {
  TempDir dir;
  const auto path = dir.write("base.yaml", kBase);
  LoadOptions options;
  options.sets = {"model.decoder.num_layers=-1"};
  Diagnostics d;
  EXPECT_FALSE(config::load_document(path, registry(), d, options));
  EXPECT_EQ(d.format(),
            "<command line>:1:26: error: model.decoder.num_layers: must be >= 1, found -1\n");
}

// --- versions ---

TEST(Version, MissingIsAnError) {
  Diagnostics d;
  EXPECT_FALSE(load_text(std::string(kBase).substr(std::string("version: 1\n").size()), d));
  EXPECT_EQ(d.format(),
            "test.yaml:1:1: error: version: missing required field 'version' (the current "
            "version is 1)\n");
}

// A missing version is one error among the others of the file, not the only one shown: the
// rest is read as the current version.
TEST(Version, MissingHidesNoOtherError) {
  const std::string text =
      "model:\n"
      "  type: language_model\n"
      "  hidden_size: 0\n"
      "  embeddings: {vocab_size: 100, colour: red}\n"
      "  decoder: {type: repeat, num_layers: 2, block: {type: transformer, mixer: {type: mamba},\n"
      "            normalization: {type: rms_norm}}}\n"
      "  head: {normalization: {type: rms_norm}}\n"
      "extra: 1\n";
  Diagnostics d;
  EXPECT_FALSE(load_text(text, d));
  EXPECT_EQ(d.format(),
            "test.yaml:1:1: error: version: missing required field 'version' (the current "
            "version is 1)\n"
            "test.yaml:3:16: error: model.hidden_size: must be >= 1, found 0\n"
            "test.yaml:4:33: error: model.embeddings: unknown field 'colour' in embeddings "
            "(valid: vocab_size, max_positions, word, position, scale, dropout, lr_scale)\n"
            "test.yaml:8:1: error: unknown top-level field 'extra' (valid: version, extends, "
            "model, train)\n");
}

TEST(Version, MissingInABaseFileHidesNoOtherError) {
  TempDir dir;
  dir.write("base.yaml", std::string(kBase).substr(std::string("version: 1\n").size()));
  const auto child = dir.write("child.yaml", "version: 1\nextends: base.yaml\nmodle: {}\n");
  Diagnostics d;
  EXPECT_FALSE(config::load_document(child, registry(), d));
  EXPECT_EQ(d.format(), dir.at("base.yaml") +
                            ":1:1: error: version: missing required field 'version' (the "
                            "current version is 1) (extended by " +
                            dir.at("child.yaml") + ":2:10)\n" +
                            dir.at("child.yaml") +
                            ":3:1: error: unknown top-level field 'modle'; did you mean "
                            "'model'? (valid: version, extends, model, train)\n");
}

TEST(Version, NewerThanSupportedIsAnError) {
  Diagnostics d;
  EXPECT_FALSE(load_text("version: 2\nmodel: {}\n", d));
  EXPECT_EQ(d.format(),
            "test.yaml:1:10: error: version: unsupported version 2; this blocks reads 1 to 1 (the "
            "file is newer than this blocks)\n");
}

TEST(Version, ZeroAndNonIntegersAreErrors) {
  {
    Diagnostics d;
    EXPECT_FALSE(load_text("version: 0\nmodel: {}\n", d));
    EXPECT_EQ(d.format(),
              "test.yaml:1:10: error: version: unsupported version 0; this blocks reads 1 to 1\n");
  }
  {
    Diagnostics d;
    EXPECT_FALSE(load_text("version: \"1\"\nmodel: {}\n", d));
    EXPECT_EQ(d.format(),
              "test.yaml:1:10: error: version: expected an integer, found the quoted string "
              "\"1\"\n");
  }
}

// Version 2 of a pretend language renamed `model.width` to `model.hidden_size`.
config::Versioning width_renamed() {
  config::Migration step;
  step.from = 1;
  step.summary = "model.width is now model.hidden_size";
  step.apply = [](Node& doc, Diagnostics&) {
    Node* model = doc.find("model");
    if (!model || !model->is_mapping()) return;
    for (auto& e : model->entries)
      if (e.key == "width") e.key = "hidden_size";
  };
  return config::Versioning{2, {step}};
}

TEST(Version, MigrationsRewriteOldDocuments) {
  const auto versions = width_renamed();
  LoadOptions options;
  options.versions = &versions;
  std::string old_text = kBase;
  old_text.replace(old_text.find("hidden_size: 64"), 15, "width: 96");
  Diagnostics d;
  auto doc = load_text(old_text, d, options);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(doc->version, 2);
  EXPECT_EQ(model_of(*doc).hidden_size, 96);
  EXPECT_EQ(doc->dump()["version"], 2);

  // The same text without the migration: `width` is unknown.
  Diagnostics d2;
  EXPECT_FALSE(load_text(old_text, d2));
  ASSERT_EQ(d2.size(), 2u) << d2.format();
  EXPECT_EQ(d2.items()[0].format(),
            "test.yaml:4:3: error: model: unknown field 'width' in language_model model (valid: "
            "hidden_size, embeddings, decoder, head, peft, lr_scale, add_linear_biases, "
            "init_std)");

  // A version-2 document is read as is; version 3 is too new.
  std::string new_text = kBase;
  new_text.replace(0, 10, "version: 2");
  Diagnostics d3;
  EXPECT_TRUE(load_text(new_text, d3, options)) << d3.format();
  new_text.replace(0, 10, "version: 3");
  Diagnostics d4;
  EXPECT_FALSE(load_text(new_text, d4, options));
  EXPECT_EQ(d4.format(),
            "test.yaml:1:10: error: version: unsupported version 3; this blocks reads 1 to 2 (the "
            "file is newer than this blocks)\n");
}

TEST(Version, EachFileIsMigratedFromItsOwnVersionBeforeMerging) {
  const auto versions = width_renamed();
  LoadOptions options;
  options.versions = &versions;
  TempDir dir;
  std::string old_base = kBase;
  old_base.replace(old_base.find("hidden_size: 64"), 15, "width: 96");
  dir.write("base.yaml", old_base);
  const auto child = dir.write(
      "child.yaml", "version: 2\nextends: base.yaml\nmodel: {decoder: {num_layers: 3}}\n");
  Diagnostics d;
  auto doc = config::load_document(child, registry(), d, options);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(model_of(*doc).hidden_size, 96);
  EXPECT_EQ(decoder_of(*doc).num_layers, 3);
}

TEST(Version, AMissingMigrationStepIsAnError) {
  auto versions = width_renamed();
  versions.current = 3;
  LoadOptions options;
  options.versions = &versions;
  Diagnostics d;
  EXPECT_FALSE(load_text(kBase, d, options));
  EXPECT_EQ(d.format(), "test.yaml:1:1: error: version: no migration from version 2 to 3\n");
}

// --- top level ---

TEST(TopLevel, UnknownKeysAreErrorsWithASuggestion) {
  Diagnostics d;
  EXPECT_FALSE(load_text("version: 1\nmodle: {}\n", d));
  EXPECT_EQ(d.format(),
            "test.yaml:1:1: error: missing required field 'model'\n"
            "test.yaml:2:1: error: unknown top-level field 'modle'; did you mean 'model'? (valid: "
            "version, extends, model, train)\n");
}

TEST(TopLevel, TheDocumentMustBeAMapping) {
  Diagnostics d;
  EXPECT_FALSE(load_text("- version: 1\n", d));
  EXPECT_EQ(d.format(),
            "test.yaml:1:1: error: expected a mapping with 'version' and 'model', found a list\n");
}

TEST(TopLevel, DumpHasVersionThenModel) {
  Diagnostics d;
  auto doc = load_text(kBase, d);
  ASSERT_TRUE(doc) << d.format();
  const auto dumped = doc->dump();
  ASSERT_EQ(dumped.size(), 2u);
  EXPECT_EQ(dumped.begin().key(), "version");
  EXPECT_EQ(dumped["model"]["type"], "language_model");
  EXPECT_EQ(dumped["model"]["decoder"]["block"]["mixer"]["head_size"], 16);
}

}  // namespace
}  // namespace blocks
