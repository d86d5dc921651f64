// blockc's contract (DESIGN.md): exit codes 0 / 1 / 2, errors on stderr as
// FILE:LINE:COL: error: PATH: message, and the outputs of each command.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/blockc_run.h"

namespace {

namespace fs = std::filesystem;
using blocks::testing::blockc;
using Run = blocks::testing::BlockcResult;

std::string write(const std::string& name, const std::string& text) {
  const fs::path dir =
      fs::temp_directory_path() / ("blockc_test_files_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return (dir / name).string();
}

const char* kSmall = R"(version: 1
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
      mlp: {type: gated, intermediate_size: 128}
      normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
)";

TEST(Blockc, ValidateValidFileExitsZeroSilently) {
  auto r = blockc("validate " + write("ok.yaml", kSmall));
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
}

TEST(Blockc, ValidateReportsEveryProblemAndExitsOne) {
  std::string text = kSmall;
  text.replace(text.find("heads: 4"), 8, "heads: 0");
  text.replace(text.find("intermediate_size: 128"), 22, "intermediat_size: 128");
  const auto bad = write("bad.yaml", text);
  auto r = blockc("validate " + write("ok2.yaml", kSmall) + " " + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            bad + ":11:61: error: model.decoder.block.mixer.heads: must be >= 1, found 0\n" + bad +
                ":12:26: error: model.decoder.block.mlp: unknown field 'intermediat_size' in "
                "gated mlp; did you mean 'intermediate_size'? (valid: intermediate_size, "
                "activation, dropout, gate, up, down, lr_scale)\n");
}

TEST(Blockc, UsageErrorsExitTwo) {
  EXPECT_EQ(blockc("").code, 2);
  EXPECT_EQ(blockc("frobnicate").code, 2);
  EXPECT_EQ(blockc("resolve").code, 2);
  EXPECT_EQ(blockc("resolve x.yaml --format toml").code, 2);
}

TEST(Blockc, MissingFileIsInvalidInput) {
  auto r = blockc("validate /nonexistent/model.yaml");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "/nonexistent/model.yaml: error: cannot open /nonexistent/model.yaml: No such file or "
            "directory\n");
}

// A FIFO would block and /dev/zero read forever ("Operation not supported" before).
TEST(Blockc, ConfigsThatAreNotRegularFilesAreRefusedBeforeReading) {
  auto r = blockc("validate /dev/zero");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "/dev/zero: error: is a character device; inputs are regular files\n");
}

TEST(Blockc, ResolveJsonWithSet) {
  auto r = blockc("resolve " + write("s.yaml", kSmall) +
                  " --format json --set model.hidden_size=128 --set model.decoder.num_layers=3");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["model"]["hidden_size"], 128);
  EXPECT_EQ(j["model"]["decoder"]["num_layers"], 3);
  EXPECT_EQ(j["model"]["decoder"]["block"]["mixer"]["head_size"], 32);
  EXPECT_EQ(j["model"]["decoder"]["block"]["mlp"]["down"]["weight_initialization"]["num_layers"],
            3);
}

TEST(Blockc, SetErrorsPointAtTheCommandLine) {
  auto r = blockc("validate " + write("s2.yaml", kSmall) + " --set model.hidden_size=-5");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "<command line>:1:19: error: model.hidden_size: must be >= 1, found -5\n");
}

TEST(Blockc, ResolveIsAFixedPoint) {
  auto first = blockc("resolve " + write("f.yaml", kSmall));
  ASSERT_EQ(first.code, 0);
  auto second = blockc("resolve " + write("f2.yaml", first.out));
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(first.out, second.out);
}

TEST(Blockc, Explain) {
  auto r = blockc("explain attention");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("heads: integer, >= 1 = required [architecture]"), std::string::npos)
      << r.out;
  auto k = blockc("explain mixer");
  EXPECT_NE(k.out.find("attention: "), std::string::npos);
  EXPECT_NE(k.out.find("mamba: "), std::string::npos);
  auto u = blockc("explain atention");
  EXPECT_EQ(u.code, 2);
  EXPECT_NE(u.err.find("unknown kind or type 'atention'; did you mean 'attention'?"),
            std::string::npos)
      << u.err;
}

TEST(Blockc, SchemaIsJson) {
  auto r = blockc("schema");
  ASSERT_EQ(r.code, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["$schema"], "https://json-schema.org/draft/2020-12/schema");
}

TEST(Blockc, DiffListsArchitectureFirst) {
  std::string other = kSmall;
  other.replace(other.find("hidden_size: 64"), 15, "hidden_size: 128");
  other.replace(other.find("num_layers: 2"), 13, "num_layers: 2\n    lr_scale: 0.5");
  auto r = blockc("diff " + write("a.yaml", kSmall) + " " + write("b.yaml", other));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto arch = r.out.find("architecture:\n  model.hidden_size: 64 -> 128\n");
  const auto opt = r.out.find("optional:\n  model.decoder.lr_scale: 1.0 -> 0.5\n");
  EXPECT_NE(arch, std::string::npos) << r.out;
  EXPECT_NE(opt, std::string::npos) << r.out;
  EXPECT_LT(arch, opt);
}

// A bias adds a parameter (explain: bias [architecture]), so it is listed with the
// architecture even though the projection holding it is optional to write; its
// initialization stays optional.
TEST(Blockc, DiffListsALinearBiasAsArchitecture) {
  std::string other = kSmall;
  other.replace(other.find("heads: 4}"), 9,
                "heads: 4, query: {bias: true}, key: {bias: true}, value: {bias: true}}");
  auto r = blockc("diff " + write("a.yaml", kSmall) + " " + write("b.yaml", other));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "architecture:\n"
            "  model.decoder.block.mixer.query.bias: false -> true\n"
            "  model.decoder.block.mixer.key.bias: false -> true\n"
            "  model.decoder.block.mixer.value.bias: false -> true\n");
  EXPECT_NE(blockc("explain linear").out.find("bias: boolean or null = from parent [architecture]"), std::string::npos);
}

TEST(Blockc, DiagramFormats) {
  const auto file = write("d.yaml", kSmall);
  auto dot = blockc("diagram " + file + " --format dot");
  ASSERT_EQ(dot.code, 0) << dot.err;
  EXPECT_EQ(dot.out.rfind("// Generated by blockc diagram from " + file + "\ndigraph blocks {", 0),
            0u);
  EXPECT_NE(dot.out.find("×2 · layers 0, 1"), std::string::npos) << dot.out;
  auto mermaid = blockc("diagram " + file + " --format mermaid --depth 2");
  ASSERT_EQ(mermaid.code, 0);
  EXPECT_EQ(mermaid.out.rfind("flowchart TB\n", 0), 0u);
  auto svg = blockc("diagram " + file);  // SVG by default
  ASSERT_EQ(svg.code, 0) << svg.err;
  EXPECT_NE(svg.out.find("<svg"), std::string::npos);
  EXPECT_EQ(blockc("diagram " + file + " --format png").code, 2);
  EXPECT_EQ(blockc("diagram " + file + " --depth 0").code, 2);
}

}  // namespace

namespace hardening {

using blocks::testing::blockc;

bool says(const blocks::testing::BlockcResult& r, const std::string& text) {
  return r.err.find(text) != std::string::npos;
}

// Usage errors found while parsing (exit 2): before, these were ignored, normalised or wrapped.
TEST(Blockc, MalformedSetsAreUsageErrors) {
  const std::string file = write("u.yaml", kSmall);
  for (const std::string set : {"model..hidden_size=1", ".model=1", "model.=1"}) {
    auto r = blockc("validate " + file + " --set " + set);
    EXPECT_EQ(r.code, 2) << set;
    const std::string path = set.substr(0, set.find('='));
    EXPECT_TRUE(says(r, "'" + path + "' is not a config path")) << set << "\n" << r.err;
  }
  auto r = blockc("validate " + file + " --set extends=missing.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(says(r, "--set cannot change `extends`")) << r.err;
  EXPECT_EQ(blockc("validate " + file + " --set 'model.decoder.num_layers=3'").code, 0);
}

TEST(Blockc, SeedsOutOfRangeAndHugeShardSizesAreUsageErrors) {
  const std::string file = write("s.yaml", kSmall);
  for (const std::string seed : {"-1", "18446744073709551616"}) {
    auto r = blockc("init " + file + " -o " + write("o.safetensors", "") + " --seed " + seed);
    EXPECT_EQ(r.code, 2) << seed;
    EXPECT_TRUE(says(r, "expected a whole number from 0 to 18446744073709551615, found '" +
                            seed + "'"))
        << r.err;
  }
  auto r = blockc("export --model " + file + " --seed 0 --to hf -o out_dir --max-shard-size "
                  "99999999999999999999999TB");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(says(r, "expected a size from 1B to 16EiB")) << r.err;
  r = blockc("summary " + file + " --context 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(says(r, "expected a whole number of 1 or more, found '0'")) << r.err;
  EXPECT_LT(r.err.size(), 300u) << r.err;  // CLI11 printed a 300-digit range
}

TEST(Blockc, UnknownCommandsAreUsageErrors) {
  auto r = blockc("bogus");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(says(r, "unknown command 'bogus'")) << r.err;
  r = blockc("valdate --help");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(says(r, "unknown command 'valdate'; did you mean 'validate'?")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(Blockc, DiagramExpandOfAMissingPathIsAnError) {
  auto r = blockc("diagram " + write("d.yaml", kSmall) + " --format dot --expand model.decodr");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(says(r, "--expand 'model.decodr' names no config of the model; did you mean "
                      "'model.decoder'?"))
      << r.err;
}

// 10^12 layers: an error at num_layers at once, instead of memory growing by the layer; the
// limit is raised on the command line, and then validation still costs one layer.
TEST(Blockc, LayerCountsPastTheLimitAreAnErrorAtNumLayers) {
  const std::string file = write("l.yaml", kSmall);
  auto r = blockc("validate " + file + " --set model.decoder.num_layers=1000000000000");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(says(r, "model.decoder.num_layers: 1000000000000 layers are more than the limit "
                      "of 100000 (LoadLimits::max_layers; blockc's --max-layers raises it)"))
      << r.err;
  r = blockc("validate " + file +
             " --max-layers 2000000000000 --set model.decoder.num_layers=1000000000000");
  EXPECT_EQ(r.code, 0) << r.err;
}

// "blockc resolve -o FILE" (README) writes the file and nothing on stdout.
TEST(Blockc, ResolveWritesToOutputFile) {
  const std::string out = write("resolved.yaml", "");
  auto r = blockc("resolve " + write("r.yaml", kSmall) + " -o " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, blockc("resolve " + write("r.yaml", kSmall)).out);
}

// README: "the other commands never load LibTorch".
TEST(Blockc, TheConfigCommandsDoNotLinkLibTorch) {
  auto r = blocks::testing::blockc("validate " + write("t.yaml", kSmall));
  ASSERT_EQ(r.code, 0);
  const std::string ldd = "ldd " + std::string(BLOCKC) + " | grep -cE 'libtorch|libc10' ";
  EXPECT_NE(std::system((ldd + ">/dev/null").c_str()), 0) << "blockc links LibTorch";
}

}  // namespace hardening
