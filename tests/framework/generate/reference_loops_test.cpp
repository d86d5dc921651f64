// blockc generate against the loops users run today, token for token, on fixed checkpoints:
// nanoGPT's generate() (tests/support/nanogpt_reference.py, model.py's loop: the whole
// sequence each step, top_k=1 for greedy) on the GPT-2-shaped fixture, and Meta's Llama 3
// generation.py (benchmarks/generate_peer.py: model.py's per-layer KV cache and interleaved
// rotary, prompts of different lengths right-aligned on position 0 instead of left-padded) on a
// Llama exported to a Hugging Face folder by blockc.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "framework/weights/safetensors.h"
#include "tests/support/blockc_run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

// The JSON a reference script printed, or a failed assertion.
nlohmann::json run_reference(const std::string& command, TempDir& dir) {
  const std::string full =
      command + " >" + dir.at("reference.json") + " 2>" + dir.at("reference.err");
  if (std::system(full.c_str()) != 0) {
    std::ifstream err(dir.at("reference.err"));
    ADD_FAILURE() << command << " failed:\n"
                  << std::string(std::istreambuf_iterator<char>(err), {});
    return {};
  }
  std::ifstream in(dir.at("reference.json"));
  return nlohmann::json::parse(in);
}

std::vector<std::vector<int64_t>> generated(const BlockcResult& r) {
  std::vector<std::vector<int64_t>> rows;
  const auto json = nlohmann::json::parse(r.out);
  for (const auto& row : json["rows"]) rows.push_back(row["ids"].get<std::vector<int64_t>>());
  return rows;
}

TEST(ReferenceLoops, NanoGptGenerateWithTopOneIsGreedy) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  TempDir dir;
  const std::string model = BLOCKS_SOURCE_DIR "/tests/fixtures/train/nanogpt-tiny.yaml";
  // A wider init than nanoGPT's 0.02, so that the choices are not one token over and over.
  ASSERT_EQ(blockc("init " + model + " --seed 3 --set model.init_std=0.5 -o " +
                   dir.at("init.safetensors"))
                .code,
            0);
  std::mt19937 random(11);
  std::vector<int64_t> ids(2 * 6);
  for (auto& id : ids) id = static_cast<int64_t>(random() % 96);
  weights::write_safetensors(dir.at("prompts.safetensors"),
                             {{"tokens", at::tensor(ids, at::kLong).view({2, 6})}}, {});
  dir.write("spec.json", R"({"model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "vocab_size": 96,
    "block_size": 32, "bias": true}, "init": "init.safetensors",
    "generate": {"input": "prompts.safetensors", "max_new_tokens": 24}})");
  const auto reference = run_reference(
      std::string(reference_python()) +
          " " BLOCKS_SOURCE_DIR "/tests/support/nanogpt_reference.py " + dir.at("spec.json"),
      dir);
  ASSERT_TRUE(reference.contains("ids"));
  const auto r = blockc("generate --model " + model + " --weights " + dir.at("init.safetensors") +
                        " --prompt-tokens " + dir.at("prompts.safetensors") +
                        " --greedy --max-new-tokens 24 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(generated(r), reference["ids"].get<std::vector<std::vector<int64_t>>>());
}

constexpr const char* kLlama = R"(version: 1
model:
  type: language_model
  hidden_size: 48
  embeddings: {vocab_size: 80}
  decoder:
    type: repeat
    num_layers: 3
    block:
      type: transformer
      mixer: {type: attention, heads: 6, head_groups: 2, rotary: {type: default, theta: 500000}}
      mlp: {type: gated, intermediate_size: 96}
      normalization: {type: rms_norm, epsilon: 1.0e-5}
  head: {normalization: {type: rms_norm, epsilon: 1.0e-5}}
)";

// Three prompts of 4, 9 and 6 tokens: blocks left-pads them with a mask, Meta's loop decodes
// from position 4 on while the longer prompts still copy their own tokens in. A stop id ends
// its row in both.
TEST(ReferenceLoops, Llama3GenerationPyOnABatchOfPromptsOfThreeLengths) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  TempDir dir;
  const std::string yaml = dir.write("llama.yaml", kLlama);
  ASSERT_EQ(blockc("init " + yaml + " --seed 2 -o " + dir.at("init.safetensors")).code, 0);
  const auto exported =
      blockc("export --model " + yaml + " --weights " + dir.at("init.safetensors") +
             " --to hf --model-type llama -o " + dir.at("hf"));
  ASSERT_EQ(exported.code, 0) << exported.err;
  const std::vector<std::vector<int64_t>> prompts = {
      {5, 17, 33, 2}, {60, 61, 7, 7, 9, 12, 40, 41, 3}, {70, 1, 44, 20, 21, 22}};
  at::Tensor tokens = at::zeros({3, 9}, at::kLong), mask = at::zeros({3, 9}, at::kLong);
  for (int64_t r = 0; r < 3; ++r) {
    const auto& p = prompts[static_cast<size_t>(r)];
    const auto n = static_cast<int64_t>(p.size());
    tokens[r].narrow(0, 9 - n, n).copy_(at::tensor(p, at::kLong));  // left-padded, as HF's
    mask[r].narrow(0, 9 - n, n).fill_(1);
  }
  weights::write_safetensors(dir.at("prompts.safetensors"),
                             {{"tokens", tokens}, {"attention_mask", mask}}, {});
  std::ofstream(dir.at("prompts.json")) << nlohmann::json(prompts).dump();
  const std::string peer = std::string(reference_python()) +
                           " " BLOCKS_SOURCE_DIR "/benchmarks/generate_peer.py --folder " +
                           dir.at("hf") + " --prompts " + dir.at("prompts.json") +
                           " --max-gen-len 20";
  const auto free_run = run_reference(peer, dir);
  ASSERT_TRUE(free_run.contains("ids"));
  const std::string ours = "generate --model " + dir.at("hf") + " --prompt-tokens " +
                           dir.at("prompts.safetensors") + " --greedy --max-new-tokens 20 --json";
  const auto r = blockc(ours);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto expected = free_run["ids"].get<std::vector<std::vector<int64_t>>>();
  EXPECT_EQ(generated(r), expected);

  // A stop id: the fifth token of row 1. HF folders without a tokenizer take stop ids from
  // --stop-id.
  const int64_t stop = expected[1][4];
  const auto stopped = run_reference(peer + " --stop " + std::to_string(stop), dir);
  const auto s = blockc(ours + " --stop-id " + std::to_string(stop));
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(generated(s), stopped["ids"].get<std::vector<std::vector<int64_t>>>());
  EXPECT_LE(generated(s)[1].size(), 5u);
}

}  // namespace
}  // namespace blocks::testing
