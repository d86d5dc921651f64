// Names and patterns on hostile input (issue 11, items 1 and 12): matching is bounded work with
// no stack recursion, tensor names have a length limit, and a catastrophic rule is an error
// naming the rule and the name instead of a hang.
#include "framework/weights/name_pattern.h"

#include <gmock/gmock.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "framework/weights/mapping.h"
#include "tests/support/blockc_run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

using weights::NamePattern;
using weights::PatternError;

// A safetensors file written byte by byte, so that it may hold what write_safetensors refuses.
void write_raw(const std::string& path, const std::string& name) {
  std::string header = "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  for (size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>(header.size() >> (8 * i) & 0xff);
  bytes += header + std::string(4, '\0');
  std::ofstream(path, std::ios::binary) << bytes;
}

double seconds_of(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(NamePattern, MatchesWholeNamesWithCaptures) {
  const NamePattern p(R"(model\.layers\.(\d+)\.(self_attn|mlp)(?:\.(\w+))?\.weight)");
  std::vector<std::string> c;
  ASSERT_TRUE(p.full_match("model.layers.12.mlp.weight", &c));
  EXPECT_EQ(c, (std::vector<std::string>{"model.layers.12.mlp.weight", "12", "mlp", ""}));
  ASSERT_TRUE(p.full_match("model.layers.3.self_attn.q_proj.weight", &c));
  EXPECT_EQ(c[3], "q_proj");
  // Whole names only, as std::regex_match: neither a prefix nor a suffix matches.
  EXPECT_FALSE(p.full_match("model.layers.12.mlp.weight.extra"));
  EXPECT_FALSE(p.full_match("x.model.layers.12.mlp.weight"));
  EXPECT_FALSE(NamePattern("a$").full_match("a\n"));
}

TEST(NamePattern, BadPatternsSayWhy) {
  try {
    NamePattern("a(");
    ADD_FAILURE() << "compiled";
  } catch (const PatternError& e) {
    EXPECT_STREQ(e.what(), "bad regex `a(`: missing closing parenthesis at offset 2");
  }
  try {
    NamePattern(std::string(5000, 'a'));
    ADD_FAILURE() << "compiled";
  } catch (const PatternError& e) {
    EXPECT_STREQ(e.what(), "regex of 5000 bytes is over the 4096-byte limit");
  }
}

// Item 12: `((\w+)\.?)+x` backtracks exponentially (std::regex hung on ordinary names). PCRE2
// rejects most names at once (no x, or no x at the end); on a name that defeats those
// shortcuts the step limit stops it within a second, naming the rule and the name.
TEST(NamePattern, CatastrophicBacktrackingIsAnErrorNotAHang) {
  const NamePattern p(R"(((\w+)\.?)+x)");
  EXPECT_LT(seconds_of([&] {
              for (const char* ordinary : {"model.layers.10.self_attn.q_proj.weight",
                                           "transformer.h.0.attn.c_attn.weight"})
                EXPECT_FALSE(p.full_match(ordinary));
            }),
            1.0);
  const std::string name = "model_layers_10_self_attn_q_proj_weight_x.";
  std::string error;
  const double took = seconds_of([&] {
    try {
      p.full_match(name);
    } catch (const PatternError& e) {
      error = e.what();
    }
  });
  EXPECT_EQ(error, "regex `((\\w+)\\.?)+x` needs more than 1000000 steps to match `" + name +
                       "`: rewrite it without nested repetition");
  EXPECT_LT(took, 1.0);
}

// Item 1: std::regex recursed once per character; a 40,000-character name exhausted the stack.
TEST(NamePattern, LongNamesNeedNoStack) {
  const std::string name(50'000, 'a');
  EXPECT_TRUE(NamePattern("(.*)").full_match(name));
  EXPECT_TRUE(NamePattern("(a|b)+").full_match(name));
}

TEST(NamePattern, CheckpointNamesHaveALengthLimit) {
  TempDir dir;
  const std::string path = dir.at("long.safetensors");
  write_raw(path, std::string(40'000, 'w'));
  try {
    weights::SafetensorsFile::open(path);
    ADD_FAILURE() << "opened";
  } catch (const weights::SafetensorsError& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": a tensor name of 40000 bytes (`" + std::string(40, 'w') +
                  "...`) is over the 4096-byte limit");
  }
  // blocks never writes what it would refuse to read.
  EXPECT_THROW(weights::write_safetensors(dir.at("w.safetensors"),
                                          {{std::string(5000, 'n'), at::zeros({1})}}),
               weights::SafetensorsError);
  // A name at the limit loads through the identity mapping (blocks' own names).
  const std::string at_limit(4096, 'p');
  write_raw(dir.at("ok.safetensors"), at_limit);
  at::Tensor target = at::ones({1});
  const auto report = weights::load_mapped({{at_limit, target}}, {dir.at("ok.safetensors")},
                                           weights::identity_mapping());
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(target.item<float>(), 0.0f);
}

// Both through the CLI: exit 1 with the message, no SIGSEGV, no hang.
TEST(NamePattern, BlockcForwardRefusesLongNamesAndCatastrophicRules) {
  TempDir dir;
  const std::string model = "forward --model " BLOCKS_SOURCE_DIR
                            "/configs/gpt2.yaml --set model.hidden_size=64 "
                            "--set model.decoder.num_layers=1 --set model.decoder.block.mixer.heads=4 "
                            "--set model.embeddings.vocab_size=100 "
                            "--set model.embeddings.max_positions=32 --input " +
                            dir.at("in.safetensors") + " --output " + dir.at("out.safetensors");
  weights::write_safetensors(dir.at("in.safetensors"), {{"tokens", at::zeros({1, 4}, at::kLong)}});
  write_raw(dir.at("long.safetensors"), std::string(40'000, 'w'));
  auto r = blockc(model + " --weights " + dir.at("long.safetensors"));
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("is over the 4096-byte limit"));
  EXPECT_FALSE(std::filesystem::exists(dir.at("out.safetensors")));

  write_raw(dir.at("one.safetensors"), "transformer_h_0_attn_c_attn_weight_x.");
  const std::string map = dir.write("map.yaml", "rules:\n  - {from: '((\\w+)\\.?)+x', to: y}\n");
  const double took = seconds_of([&] {
    r = blockc(model + " --weights " + dir.at("one.safetensors") + " --map " + map);
  });
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("needs more than 1000000 steps to match "
                                          "`transformer_h_0_attn_c_attn_weight_x.`"));
  EXPECT_LT(took, 30.0);
}

}  // namespace
}  // namespace blocks::testing
