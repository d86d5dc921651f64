// Mounting configs: `extends: FILE#PATH` or a whole fragment at any node of a config, with the
// type-aware merge, relative paths, cycles, path errors and errors that name the chain of
// files that mounted a value.
#include "framework/config/compose.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "blocks/mixers/attention.h"
#include "blocks/mixers/mamba.h"
#include "blocks/mlps/mlp.h"
#include "blocks/models/language_model.h"
#include "blocks/registry.h"
#include "blocks/sequences/repeat.h"
#include "blocks/sequences/transformer.h"
#include "framework/config/document.h"
#include "tests/support/model_text.h"
#include "tests/support/temp_dir.h"

namespace blocks {
namespace {

namespace fs = std::filesystem;
using config::Diagnostics;
using config::Document;
using config::LoadOptions;

using blocks::testing::block_of;
using blocks::testing::decoder_of;
using blocks::testing::model_of;
using blocks::testing::TempDir;

// A zoo config as a path relative to `dir`, as a file there would name it.
std::string zoo(const TempDir& dir, const std::string& name) {
  return fs::relative(fs::absolute("configs/" + name), dir.path()).string();
}

// A whole config whose decoder and head other files mount. Line 13 holds the block's norm.
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
      mixer: {type: attention, heads: 4, window_size: 16, rotary: {type: default}}
      mlp: {type: mlp}
      normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
)";

// A language model around a decoder given as one line of YAML (line 6 of the file).
std::string model_with_decoder(const std::string& decoder) {
  return "version: 1\nmodel:\n  type: language_model\n  hidden_size: 64\n"
         "  embeddings: {vocab_size: 100}\n  decoder: " +
         decoder + "\n  head: {normalization: {type: rms_norm}}\n";
}

std::optional<Document> load(const std::string& path, Diagnostics& d,
                             const LoadOptions& options = {}) {
  return config::load_document(path, registry(), d, options);
}

// --- the zoo's Llama 3 8B, mounted ---

TEST(Mount, ZooDecoderWithAnOverrideResolvesAsTheOriginalWithThatOverride) {
  TempDir dir;
  const auto top = dir.write("top.yaml", R"(version: 1
model:
  type: language_model
  hidden_size: 4096
  add_linear_biases: false
  embeddings: {vocab_size: 128256}
  decoder: {extends: ")" + zoo(dir, "llama3-8b.yaml") +
                                             R"(#model.decoder", num_layers: 2}
  head: {normalization: {type: rms_norm, epsilon: 1.0e-5}, tied: false}
)");
  Diagnostics d;
  auto mounted = load(top, d);
  ASSERT_TRUE(mounted) << d.format();
  EXPECT_EQ(decoder_of(*mounted).num_layers, 2);

  LoadOptions two_layers;
  two_layers.sets = {"model.decoder.num_layers=2"};
  auto original = load("configs/llama3-8b.yaml", d, two_layers);
  ASSERT_TRUE(original) << d.format();
  EXPECT_EQ(mounted->dump()["model"]["decoder"].dump(2),
            original->dump()["model"]["decoder"].dump(2));
  EXPECT_EQ(mounted->dump()["model"]["decoder"]["block"]["mixer"]["head_groups"], 8);

  auto unchanged = load("configs/llama3-8b.yaml", d);
  ASSERT_TRUE(unchanged) << d.format();
  EXPECT_NE(mounted->dump()["model"]["decoder"], unchanged->dump()["model"]["decoder"]);
}

TEST(Mount, EveryZooModelMountedWholeResolvesToTheOriginal) {
  TempDir dir;
  size_t checked = 0;
  for (const auto& entry : fs::directory_iterator("configs")) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string name = entry.path().filename().string();
    const auto top =
        dir.write("top-" + name, "version: 1\nmodel: {extends: \"" + zoo(dir, name) + "#model\"}\n");
    Diagnostics d;
    auto mounted = load(top, d);
    ASSERT_TRUE(mounted) << name << "\n" << d.format();
    auto original = load(entry.path().string(), d);
    ASSERT_TRUE(original) << name << "\n" << d.format();
    EXPECT_EQ(mounted->dump().dump(2), original->dump().dump(2)) << name;
    ++checked;
  }
  EXPECT_GE(checked, 9u);  // lora.yaml among them: a mounted file with a top-level extends
}

// --- the merge ---

TEST(Mount, OverridesDeepMergeAndMarksPointToTheFileThatWroteThem) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const auto top = dir.write(
      "top.yaml", model_with_decoder("{extends: \"base.yaml#model.decoder\", num_layers: 3, "
                                     "block: {mixer: {head_groups: 2}}}"));
  Diagnostics d;
  auto doc = load(top, d);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(decoder_of(*doc).num_layers, 3);
  const auto* mixer = block_of(*doc).mixer.as<AttentionConfig>();
  ASSERT_NE(mixer, nullptr);
  EXPECT_EQ(mixer->heads, 4);         // from the base
  EXPECT_EQ(mixer->window_size, 16);  // from the base
  EXPECT_EQ(mixer->head_groups, 2);
  EXPECT_EQ(mixer->mark_of("heads").where(), dir.at("base.yaml") + ":11:39");
  EXPECT_EQ(mixer->mark_of("heads").chain(), "mounted from " + dir.at("top.yaml") + ":6:22");
  EXPECT_EQ(mixer->mark_of("head_groups").where(), dir.at("top.yaml") + ":6:93");
  EXPECT_EQ(mixer->mark_of("head_groups").chain(), "");
  // The mounting node is where the decoder is written.
  EXPECT_EQ(decoder_of(*doc).mark.where(), dir.at("top.yaml") + ":6:12");
}

TEST(Mount, ChangingATypeDropsTheOldTypesFields) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const auto top = dir.write(
      "top.yaml", model_with_decoder("{extends: \"base.yaml#model.decoder\", block: {mixer: "
                                     "{type: mamba, state_size: 8}}}"));
  Diagnostics d;
  auto doc = load(top, d);
  ASSERT_TRUE(doc) << d.format();  // `heads` and `window_size` would be unknown mamba fields
  const auto* mamba = block_of(*doc).mixer.as<MambaConfig>();
  ASSERT_NE(mamba, nullptr);
  EXPECT_EQ(mamba->state_size, 8);
  EXPECT_EQ(mamba->conv_kernel_size, 4);
}

TEST(Mount, AListOfBasesMergesInOrderBelowTheNode) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  dir.write("deep.yaml", "type: repeat\nnum_layers: 6\nblock: {mixer: {heads: 8}}\n");
  const auto top = dir.write(
      "top.yaml", model_with_decoder("{extends: [\"base.yaml#model.decoder\", deep.yaml], "
                                     "block: {mixer: {head_groups: 2}}}"));
  Diagnostics d;
  auto doc = load(top, d);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(decoder_of(*doc).num_layers, 6);  // the later base wins
  const auto* mixer = block_of(*doc).mixer.as<AttentionConfig>();
  EXPECT_EQ(mixer->heads, 8);
  EXPECT_EQ(mixer->window_size, 16);
  EXPECT_EQ(mixer->head_groups, 2);
}

TEST(Mount, SetOverridesApplyAfterComposition) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const auto top =
      dir.write("top.yaml", model_with_decoder("{extends: \"base.yaml#model.decoder\"}"));
  LoadOptions options;
  options.sets = {"model.decoder.block.mixer.heads=8", "model.decoder.num_layers=5"};
  Diagnostics d;
  auto doc = load(top, d, options);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(decoder_of(*doc).num_layers, 5);
  EXPECT_EQ(block_of(*doc).mixer.as<AttentionConfig>()->heads, 8);
  EXPECT_EQ(block_of(*doc).mixer.as<AttentionConfig>()->head_size, 8);
}

TEST(Mount, PathsIndexIntoLists) {
  TempDir dir;
  dir.write("fixed.yaml", R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: fixed
    blocks:
      - {type: transformer, mixer: {type: attention, heads: 4, rotary: {type: default}}, mlp: {type: mlp}, normalization: {type: rms_norm}}
      - {type: transformer, mixer: {type: attention, heads: 2, rotary: {type: default}}, mlp: {type: mlp}, normalization: {type: rms_norm}}
  head: {normalization: {type: rms_norm}}
)");
  const auto top =
      dir.write("top.yaml", model_with_decoder("{type: repeat, num_layers: 2, block: {extends: "
                                               "\"fixed.yaml#model.decoder.blocks[1]\"}}"));
  Diagnostics d;
  auto doc = load(top, d);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(block_of(*doc).mixer.as<AttentionConfig>()->heads, 2);
}

// --- nested mounts, fragments, relative paths ---

TEST(Mount, MountsInsideMountedFilesAndFragmentsResolveFromTheirOwnFile) {
  TempDir dir;
  // A fragment (no version) in a folder of its own, mounting a part of a whole config one
  // folder up: each path is relative to the file that says it.
  dir.write("configs/base.yaml", kBase);
  dir.write("parts/block.yaml",
            "extends: \"../configs/base.yaml#model.decoder.block\"\n"
            "mixer: {heads: 2}\n");
  dir.write("parts/decoder.yaml", R"(version: 1
model:
  decoder:
    type: repeat
    num_layers: 4
    block: {extends: block.yaml, mlp: {intermediate_size: 96}}
)");
  const auto top =
      dir.write("top.yaml", model_with_decoder("{extends: \"parts/decoder.yaml#model.decoder\"}"));
  Diagnostics d;
  auto doc = load(top, d);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(decoder_of(*doc).num_layers, 4);
  const auto* mixer = block_of(*doc).mixer.as<AttentionConfig>();
  EXPECT_EQ(mixer->heads, 2);
  EXPECT_EQ(mixer->window_size, 16);
  EXPECT_EQ(block_of(*doc).mlp.as<MlpLayerConfig>()->intermediate_size, 96);
  EXPECT_EQ(mixer->mark_of("window_size").chain(),
            "mounted from " + dir.at("parts/block.yaml") + ":1:10, mounted from " +
                dir.at("parts/decoder.yaml") + ":6:22, mounted from " + dir.at("top.yaml") +
                ":6:22");
}

TEST(Mount, AWholeConfigMountedAsAFragmentIsAnError) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  dir.write("list.yaml", "- 1\n");
  const auto top = dir.write("top.yaml", model_with_decoder("{extends: [base.yaml, list.yaml]}"));
  Diagnostics d;
  EXPECT_FALSE(load(top, d));
  EXPECT_EQ(d.format(), top +
                            ":6:23: error: model.decoder.extends: 'base.yaml' is a whole config "
                            "(it has 'version'); name the part to mount, e.g. "
                            "'base.yaml#model'\n" +
                            top +
                            ":6:34: error: model.decoder.extends: 'list.yaml' holds a "
                            "list, not a mapping to mount\n");
}

// --- errors ---

TEST(Mount, ErrorsInAMountedFileNameTheChainAndEveryErrorIsReported) {
  TempDir dir;
  std::string base = kBase;
  base.replace(base.find("{type: rms_norm}\n  head"), 16, "{type: rms_norm, epsilon: 0}");
  dir.write("base.yaml", base);
  dir.write("mid.yaml",
            "version: 1\nmodel:\n  decoder:\n    type: repeat\n    num_layers: 2\n"
            "    block: {extends: \"base.yaml#model.decoder.block\"}\n");
  const auto top = dir.write("top.yaml", R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 0}
  decoder: {extends: "mid.yaml#model.decoder"}
  head: {normalization: {type: rms_norm}}
)");
  Diagnostics d;
  EXPECT_FALSE(load(top, d));
  EXPECT_EQ(d.format(), dir.at("base.yaml") +
                            ":13:48: error: model.decoder.block.normalization.epsilon: must be "
                            "> 0, found 0 (mounted from " +
                            dir.at("mid.yaml") + ":6:22, mounted from " + top + ":6:22)\n" + top +
                            ":5:28: error: model.embeddings.vocab_size: must be >= 1, found 0\n");
}

TEST(Mount, ErrorsInAFileTheTopExtendsNameTheChain) {
  TempDir dir;
  std::string base = kBase;
  base.replace(base.find("heads: 4"), 8, "heads: x");
  dir.write("base.yaml", base);
  const auto child = dir.write("child.yaml", "version: 1\nextends: base.yaml\n");
  Diagnostics d;
  EXPECT_FALSE(load(child, d));
  EXPECT_EQ(d.format(), dir.at("base.yaml") +
                            ":11:39: error: model.decoder.block.mixer.heads: expected an "
                            "integer, found 'x' (extended by " +
                            child + ":2:10)\n");
}

TEST(Mount, OneFileMountedTwiceReportsItsErrorOncePerMount) {
  TempDir dir;
  dir.write("block.yaml",
            "type: transformer\nmixer: {type: attention, heads: 0}\nmlp: {type: mlp}\n"
            "normalization: {type: rms_norm}\n");
  const auto top =
      dir.write("top.yaml", model_with_decoder("{type: fixed, blocks: [{extends: block.yaml}, "
                                               "{extends: block.yaml}]}"));
  Diagnostics d;
  EXPECT_FALSE(load(top, d));
  const std::string heads = dir.at("block.yaml") + ":2:33: error: ";
  const std::string message = ": must be >= 1, found 0 (mounted from " + top;
  EXPECT_NE(d.format().find(heads + "model.decoder.blocks[0].mixer.heads" + message + ":6:45)\n"),
            std::string::npos)
      << d.format();
  EXPECT_NE(d.format().find(heads + "model.decoder.blocks[1].mixer.heads" + message + ":6:68)\n"),
            std::string::npos)
      << d.format();
}

TEST(Mount, LoaderErrorsOfAMountedFileNameTheChainToo) {
  TempDir dir;
  dir.write("base.yaml", std::string(kBase) + "version: 1\n");
  dir.write("bare.yaml", "model: {}\n");
  const auto top = dir.write(
      "top.yaml",
      model_with_decoder("{extends: [\"base.yaml#model.decoder\", \"bare.yaml#model\"]}"));
  Diagnostics d;
  EXPECT_FALSE(load(top, d));
  EXPECT_EQ(d.format(), dir.at("bare.yaml") +
                            ":1:1: error: version: missing required field 'version' (the "
                            "current version is 1) (mounted from " +
                            top + ":6:50)\n" + dir.at("base.yaml") +
                            ":16:1: error: duplicate key 'version' (first written at line 1) "
                            "(mounted from " +
                            top + ":6:23)\n");
}

TEST(Mount, ACycleThroughMountsIsAnErrorNamingTheChain) {
  TempDir dir;
  const auto a = dir.write("a.yaml", model_with_decoder("{extends: \"b.yaml#model.decoder\"}"));
  dir.write("b.yaml", model_with_decoder("{extends: \"a.yaml#model.decoder\"}"));
  Diagnostics d;
  EXPECT_FALSE(load(a, d));
  EXPECT_EQ(d.format(), dir.at("b.yaml") +
                            ":6:22: error: model.decoder.extends: include cycle: a.yaml -> "
                            "b.yaml#model.decoder -> a.yaml#model.decoder\n");

  // A file mounting a part of itself needs itself composed first: a cycle too.
  const auto self =
      dir.write("self.yaml", model_with_decoder("{extends: \"self.yaml#model.head\"}"));
  Diagnostics d2;
  EXPECT_FALSE(load(self, d2));
  EXPECT_EQ(d2.format(), self +
                             ":6:22: error: model.decoder.extends: include cycle: self.yaml "
                             "-> self.yaml#model.head\n");

  // Through a fragment and the top-level form.
  const auto top = dir.write("top.yaml", "version: 1\nextends: mid.yaml\n");
  dir.write("mid.yaml", "version: 1\nmodel: {decoder: {extends: part.yaml}}\n");
  dir.write("part.yaml", "block: {extends: \"top.yaml#model\"}\n");
  Diagnostics d3;
  EXPECT_FALSE(load(top, d3));
  EXPECT_EQ(d3.format(), dir.at("part.yaml") +
                             ":1:18: error: model.decoder.block.extends: include cycle: top.yaml "
                             "-> mid.yaml -> part.yaml -> top.yaml#model\n");
}

TEST(Mount, PathErrorsSayWhichPartIsMissingAndWhatIsThere) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const std::string at = ":6:22: error: model.decoder.extends: ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"base.yaml#model.vision_tower",
       "no 'vision_tower' in 'model' of base.yaml (keys there: type, hidden_size, embeddings, "
       "decoder, head)"},
      {"base.yaml#modle.decoder",
       "no 'modle' at the top of base.yaml; did you mean 'model'? (keys there: version, model)"},
      {"base.yaml#model.decoder.block.mixer.heads",
       "'model.decoder.block.mixer.heads' of base.yaml is '4', not a mapping: only a mapping "
       "can be mounted"},
      {"base.yaml#model.hidden_size.width",
       "'model.hidden_size' of base.yaml is '64', which has no 'width'"},
      {"base.yaml#", "'base.yaml#' names no path after '#' (e.g. 'base.yaml#model')"},
      {"#model.decoder", "expected FILE or FILE#PATH, found the quoted string \"#model.decoder\""},
  };
  for (const auto& [ref, message] : cases) {
    const auto top = dir.write("top.yaml", model_with_decoder("{extends: \"" + ref + "\"}"));
    Diagnostics d;
    EXPECT_FALSE(load(top, d)) << ref;
    EXPECT_EQ(d.format(), top + at + message + "\n") << ref;
  }

  dir.write("list.yaml", "version: 1\nmodel: {layers: [{a: 1}]}\n");
  const auto top =
      dir.write("top.yaml", model_with_decoder("{extends: \"list.yaml#model.layers[2]\"}"));
  Diagnostics d;
  EXPECT_FALSE(load(top, d));
  EXPECT_EQ(d.format(),
            top + at + "no item '2' in 'model.layers' of list.yaml (the list has 1 items)\n");
}

TEST(Mount, AMissingFileIsReportedWhereItIsNamed) {
  TempDir dir;
  const auto top = dir.write("top.yaml", model_with_decoder("{extends: \"nope.yaml#model\"}"));
  Diagnostics d;
  EXPECT_FALSE(load(top, d));
  EXPECT_EQ(d.format(), top + ":6:22: error: model.decoder.extends: cannot open " +
                            dir.at("nope.yaml") + ": No such file or directory\n");
}

TEST(Mount, TheTopOfAFileExtendsWholeFiles) {
  TempDir dir;
  dir.write("base.yaml", kBase);
  const auto top = dir.write("top.yaml", "version: 1\nextends: \"base.yaml#model\"\n");
  Diagnostics d;
  EXPECT_FALSE(load(top, d));
  EXPECT_EQ(d.format(), top +
                            ":2:10: error: extends: the top of a file extends whole files; "
                            "mount 'base.yaml#model' at the node it belongs to (e.g. model: "
                            "{extends: \"base.yaml#model\"})\n");
}

TEST(Mount, ADocumentInMemoryCannotMount) {
  Diagnostics d;
  EXPECT_FALSE(config::load_document_text(model_with_decoder("{extends: \"base.yaml#model\"}"),
                                          "test.yaml", registry(), d));
  EXPECT_EQ(d.format(),
            "test.yaml:6:22: error: model.decoder.extends: 'extends' needs a file on disk; load "
            "this document with load_document\n");
}

TEST(Mount, NoRegisteredTypeHasAFieldCalledExtends) {
  // `extends` is composition's key at every node; a field of that name could not be written.
  for (const auto* t : registry().all_types())
    for (const auto& f : t->fields) EXPECT_NE(f.name, "extends") << t->kind << "." << t->name;
}

// --- bounded work ---

// Files each extending the next twice: before each file was composed once per mount, 2^40
// times for 40 levels (18 levels took 30 s). Every file is read once; a value's marks still
// name the chain that reached it (through the second mount, which wins the merge).
TEST(Compose, AChainOfFilesEachExtendingTheNextTwiceLoadsInLinearTime) {
  TempDir dir;
  constexpr int kLevels = 40;
  dir.write("level" + std::to_string(kLevels) + ".yaml", kBase);
  for (int i = kLevels - 1; i >= 0; --i) {
    const std::string next = "level" + std::to_string(i + 1) + ".yaml";
    dir.write("level" + std::to_string(i) + ".yaml",
              "version: 1\nextends: [" + next + ", " + next + "]\n");
  }
  Diagnostics d;
  const auto start = std::chrono::steady_clock::now();
  auto doc = load(dir.at("level0.yaml"), d);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(doc) << d.format();
  EXPECT_LT(took, std::chrono::milliseconds(500));
  const auto* mixer = block_of(*doc).mixer.as<AttentionConfig>();
  ASSERT_NE(mixer, nullptr);
  EXPECT_EQ(mixer->mark_of("heads").where(), dir.at("level40.yaml") + ":11:39");
  const std::string chain = mixer->mark_of("heads").chain();
  EXPECT_EQ(chain.rfind("extended by " + dir.at("level39.yaml") + ":2:25, extended by " +
                            dir.at("level38.yaml") + ":2:25",
                        0),
            0u)
      << chain;
  EXPECT_NE(chain.find("extended by " + dir.at("level0.yaml") + ":2:24"), std::string::npos)
      << chain;
}

}  // namespace
}  // namespace blocks
