// blockc summary / init / forward: exact counts of the zoo's large configs without their
// weights, init -> forward round trips against a model built in-process, and the errors bad
// checkpoints and inputs give.
#include "tests/support/blockc_run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;

// This process's own folder, removed at exit.
fs::path scratch() {
  static const TempDir dir("blockc_model_test");
  return dir.path();
}

const std::string kSmall = "--set model.hidden_size=64 --set model.decoder.num_layers=2 "
                           "--set model.decoder.block.mixer.heads=4 "
                           "--set model.decoder.block.mlp.intermediate_size=128 "
                           "--set model.embeddings.vocab_size=100 "
                           "--set model.embeddings.max_positions=32";

TEST(BlockcModel, SummaryCountsTheLargeConfigsExactly) {
  auto r = blockc("summary " BLOCKS_SOURCE_DIR "/configs/llama3-8b.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("parameters 8,030,261,248 (8.03 G), trainable 8,030,261,248, tensors 291"),
            std::string::npos)
      << r.out;
  // Repeats collapse: one line for the 32 blocks.
  EXPECT_NE(r.out.find("    block                                        x32      218,112,000"),
            std::string::npos)
      << r.out;
  r = blockc("summary " BLOCKS_SOURCE_DIR "/configs/llama3-70b.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("parameters 70,553,706,496"), std::string::npos) << r.out;
}

TEST(BlockcModel, SummaryShowsFrozenAndScaledParts) {
  auto r = blockc("summary " BLOCKS_SOURCE_DIR "/configs/lora.yaml --depth 1");
  ASSERT_EQ(r.code, 0) << r.err;
  // LoRA freezes the base weights: only the rank-16 adapters train, by hand: query 16 x (4096 +
  // 4096) and value 16 x (4096 + 1024) in 32 layers, gate and up 16 x (4096 + 14336) and down
  // 16 x (14336 + 4096) in layers 16-31: 32 x 212,992 + 16 x 884,736 = 20,971,520.
  const char* rows[] = {
      "model                                             x1    8,051,232,768    8,051,232,768       "
      "20,971,520  mixed\n",
      "  decoder                                         x1    7,000,555,520    7,000,555,520       "
      "20,971,520  mixed\n",
      "  embeddings                                      x1      525,336,576      525,336,576       "
      "         0  frozen\n",
      "  head                                            x1      525,340,672      525,340,672       "
      "         0  frozen\n",
      "parameters 8,051,232,768 (8.05 G), trainable 20,971,520, tensors 515\n"};
  for (const char* row : rows) EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;
}

TEST(BlockcModel, SummaryFlopsFollowTheFormula) {
  // 2 x (every matrix: 6,979,321,856 decoder linears + 525,336,576 head) + attention
  // 2 x 2 x 2048 x 4096 x 32 layers.
  auto r = blockc("summary " BLOCKS_SOURCE_DIR "/configs/llama3-8b.yaml --context 2048");
  ASSERT_EQ(r.code, 0) << r.err;
  const double flops = 2.0 * (6'979'321'856.0 + 525'336'576.0) + 4.0 * 2048 * 4096 * 32;
  char expected[64];
  std::snprintf(expected, sizeof expected, "%.2f GFLOP", flops / 1e9);
  EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.out;
}

TEST(BlockcModel, InitThenForwardMatchesTheModelBuiltHere) {
  const fs::path dir = scratch();
  const std::string weights = (dir / "gpt2.safetensors").string();
  auto r = blockc("init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml " + kSmall + " --seed 5 -o " +
                 weights);
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor ids = at::randint(0, 100, {2, 9}, at::make_generator<at::CPUGeneratorImpl>(9),
                                     at::TensorOptions().dtype(at::kLong));
  weights::write_safetensors((dir / "in.safetensors").string(), {{"tokens", ids}});
  r = blockc("forward --model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml " + kSmall +
             " --weights " + weights + " --input " + (dir / "in.safetensors").string() +
             " --output " + (dir / "out.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor logits =
      weights::SafetensorsFile::open((dir / "out.safetensors").string()).tensor("logits");

  config::LoadOptions options;
  for (const char* set : {"model.hidden_size=64", "model.decoder.num_layers=2",
                          "model.decoder.block.mixer.heads=4",
                          "model.decoder.block.mlp.intermediate_size=128",
                          "model.embeddings.vocab_size=100", "model.embeddings.max_positions=32"})
    options.sets.push_back(set);
  const config::Document doc = zoo("gpt2", options);
  Model model = build_model(*doc.model);
  nn::initialize(model.parameters, 5);
  model.module->eval();
  EXPECT_TRUE(at::equal(logits, model.module->forward(ids).logits.detach()));
}

TEST(BlockcModel, ForwardListsEveryCheckpointProblem) {
  const fs::path dir = scratch();
  const std::string weights = (dir / "three.safetensors").string();
  ASSERT_EQ(blockc("init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml " + kSmall +
                   " --set model.decoder.num_layers=3 -o " + weights)
                .code,
            0);
  weights::write_safetensors((dir / "in.safetensors").string(),
                             {{"tokens", at::zeros({1, 4}, at::kLong)}});
  const std::string model = "forward --model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml " + kSmall +
                            " --set model.decoder.block.mlp.intermediate_size=96 --input " +
                            (dir / "in.safetensors").string() + " --output " +
                            (dir / "never.safetensors").string() + " --weights ";
  // init's blocks_config metadata: the architecture differences, and nothing loaded.
  auto r = blockc(model + weights);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "blockc: error: the model's architecture differs from the checkpoint's (" +
                       weights +
                       "):\n  model.decoder.block.mlp.intermediate_size: model 96, checkpoint "
                       "128\n  model.decoder.num_layers: model 2, checkpoint 3\n");
  // The same tensors without metadata: every tensor problem at once.
  const std::string bare = (dir / "bare.safetensors").string();
  {
    auto file = weights::SafetensorsFile::open(weights);
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& info : file.tensors()) tensors.emplace_back(info.name, file.tensor(info.name));
    weights::write_safetensors(bare, tensors);
  }
  // A 2-layer model with a wider MLP: layer 2 is unexpected, the MLP shapes mismatch.
  r = blockc(model + bare);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("unexpected in the checkpoint (16):\n  decoder.2.mixer.key.bias\n"),
            std::string::npos)
      << r.err;
  // up.weight, up.bias and down.weight of each layer, in module order.
  EXPECT_NE(r.err.find("shape mismatches (6):\n  decoder.0.mlp.up.weight: checkpoint [128, 64], "
                       "model [96, 64]\n  decoder.0.mlp.up.bias: checkpoint [128], model [96]\n"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir / "never.safetensors"));
}

TEST(BlockcModel, ForwardRejectsBadTokens) {
  const fs::path dir = scratch();
  weights::write_safetensors((dir / "float.safetensors").string(),
                             {{"tokens", at::zeros({1, 4}, at::kFloat)}});
  auto r = blockc("forward --model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml " + kSmall +
                 " --seed 1 --input " + (dir / "float.safetensors").string() + " --output " +
                 (dir / "x.safetensors").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "blockc: error: model: input `tokens` must be integer, got Float\n");
}

TEST(BlockcModel, ForwardWithoutWeightsIsAUsageError) {
  auto r = blockc("forward --model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml --input a --output b");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "blockc: error: give --weights FILE (or --seed N for random weights)\n");
}

}  // namespace
}  // namespace blocks::testing

namespace blocks::testing {
namespace {

// README: `forward` takes `attention_mask` (and `positions`) from the input file. A left-padded
// row gives the unpadded row's logits at its real tokens; without the mask the pads would leak
// into them, so the test fails if the CLI dropped it.
TEST(BlockcModel, ForwardWithAPaddingMaskMatchesTheUnpaddedRun) {
  const fs::path dir = scratch();
  const std::string model = "forward --model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml " + kSmall +
                            " --seed 3 --output ";
  const at::TensorOptions ids = at::TensorOptions().dtype(at::kLong);
  weights::write_safetensors((dir / "plain.safetensors").string(),
                             {{"tokens", at::tensor({5, 6, 7}, ids).view({1, 3})}});
  weights::write_safetensors((dir / "padded.safetensors").string(),
                             {{"tokens", at::tensor({0, 0, 5, 6, 7}, ids).view({1, 5})},
                              {"attention_mask", at::tensor({0, 0, 1, 1, 1}, ids).view({1, 5})},
                              {"positions", at::tensor({0, 0, 0, 1, 2}, ids).view({1, 5})}});
  ASSERT_EQ(blockc(model + (dir / "a.safetensors").string() + " --input " +
                   (dir / "plain.safetensors").string())
                .code,
            0);
  auto r = blockc(model + (dir / "b.safetensors").string() + " --input " +
                  (dir / "padded.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor plain = weights::SafetensorsFile::open((dir / "a.safetensors").string()).tensor("logits");
  const at::Tensor padded =
      weights::SafetensorsFile::open((dir / "b.safetensors").string()).tensor("logits");
  EXPECT_TRUE(at::allclose(padded.narrow(1, 2, 3), plain, 1e-5, 1e-6));
}

// README: `init --dtype` writes the weights in that dtype: float32's values, rounded.
TEST(BlockcModel, InitDtypeWritesThatDtype) {
  const fs::path dir = scratch();
  const std::string init = "init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml " + kSmall + " --seed 4 ";
  ASSERT_EQ(blockc(init + "-o " + (dir / "f32.safetensors").string()).code, 0);
  auto r = blockc(init + "--dtype bfloat16 -o " + (dir / "bf16.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto f32 = weights::SafetensorsFile::open((dir / "f32.safetensors").string());
  const auto bf16 = weights::SafetensorsFile::open((dir / "bf16.safetensors").string());
  ASSERT_EQ(bf16.tensors().size(), f32.tensors().size());
  for (const auto& info : bf16.tensors()) {
    EXPECT_EQ(info.dtype, "BF16") << info.name;
    EXPECT_TRUE(at::equal(bf16.tensor(info.name), f32.tensor(info.name).to(at::kBFloat16)))
        << info.name;
  }
}

}  // namespace
}  // namespace blocks::testing
