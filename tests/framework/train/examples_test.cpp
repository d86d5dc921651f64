// Early-fusion training from example shards (framework/train/examples.h): the trainer's first
// loss is the model's next-token loss on the shard's rows with the image placeholders' targets
// ignored (label -100, as HF's LlavaForConditionalGeneration and torchtune's early-fusion
// recipes mask them), the projector learns from the images while the frozen tower stays, and
// bad shards are refused with every problem named at once.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>

#include "framework/config/config.h"
#include "framework/weights/safetensors.h"
#include "tests/support/blockc_run.h"
#include "tests/support/model_text.h"
#include "tests/support/temp_dir.h"

namespace blocks {
namespace {

namespace fs = std::filesystem;
using testing::blockc;
using testing::TempDir;

// The tiny LLaVA of testing::tiny_llava_text (placeholder 63, 4 features an image), trained.
const std::string kRun = testing::tiny_llava_text() + R"(train:
  steps: 3
  seed: 5
  data: {train: shards, format: examples, sequence_length: 12, micro_batch: 4,
         sampling: sequential}
  optimizer: {lr: 1.0e-2}
  checkpoint: {every: 3}
)";

constexpr int64_t kPlaceholder = 63, kRunLength = 4, kWidth = 13;

// 4 rows of 13 tokens: row 0 and 2 hold an image at columns 2..5, row 3 two images (1..4 and
// 7..10), row 1 none; the images in row order.
struct Shard {
  at::Tensor tokens, pixels;
};

Shard make_shard(uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Shard s;
  s.tokens = at::randint(0, kPlaceholder, {4, kWidth}, gen, at::TensorOptions().dtype(at::kLong));
  for (auto [row, column] : {std::pair{0, 2}, {2, 2}, {3, 1}, {3, 7}})
    s.tokens[row].narrow(0, column, kRunLength).fill_(kPlaceholder);
  s.pixels = at::randn({4, 3, 8, 8}, gen);
  return s;
}

std::string write_run(const TempDir& dir, const Shard& shard) {
  fs::create_directories(dir.path() / "shards");
  weights::write_safetensors(dir.at("shards/0.safetensors"),
                             {{"tokens", shard.tokens}, {"pixel_values", shard.pixels}});
  return dir.write("run.yaml", kRun);
}

std::vector<double> logged_losses(const std::string& log_path) {
  std::ifstream log(log_path);
  std::vector<double> out;
  for (std::string line; std::getline(log, line);) {
    const auto json = config::Json::parse(line);
    if (json.contains("loss")) out.push_back(json["loss"].get<double>());
  }
  return out;
}

TEST(ExampleShards, FirstLossIgnoresTheImagePlaceholders) {
  TempDir dir;
  const Shard shard = make_shard(11);
  const auto run = write_run(dir, shard);
  ASSERT_EQ(blockc("init " + run + " --seed 5 -o " + dir.at("init.safetensors")).code, 0);
  const auto r = blockc("train " + run + " --out " + dir.at("out"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto losses = logged_losses(dir.at("out/log.jsonl"));
  ASSERT_EQ(losses.size(), 3u);

  // The same rows through `blockc forward`, and the loss written out here.
  weights::write_safetensors(dir.at("in.safetensors"),
                             {{"tokens", shard.tokens.narrow(1, 0, kWidth - 1).contiguous()},
                              {"pixel_values", shard.pixels}});
  const auto f = blockc("forward --model " + run + " --weights " + dir.at("init.safetensors") +
                        " --input " + dir.at("in.safetensors") + " --output " +
                        dir.at("logits.safetensors"));
  ASSERT_EQ(f.code, 0) << f.err;
  const at::Tensor logits =
      weights::SafetensorsFile::open(dir.at("logits.safetensors")).tensor("logits").reshape({-1, 64});
  const at::Tensor targets = shard.tokens.narrow(1, 1, kWidth - 1).reshape({-1});
  const at::Tensor counted = targets.ne(kPlaceholder);
  const at::Tensor per_token = at::cross_entropy_loss(logits, targets, {}, at::Reduction::None);
  const double expected = (per_token * counted).sum().item<double>() / counted.sum().item<double>();
  EXPECT_NEAR(losses[0], expected, 1e-4);
  EXPECT_GT(std::abs(per_token.mean().item<double>() - expected), 1e-3)
      << "the placeholders' targets must make a difference for this test to mean anything";

  // The projector learned from the images (only they reach it); the tower, frozen by the
  // fusion model's default encoders_trainable: false (torchtune's), stayed the same bytes.
  const auto before = weights::SafetensorsFile::open(dir.at("init.safetensors"));
  const auto after = weights::SafetensorsFile::open(dir.at("out/checkpoints/step-00000003/model.safetensors"));
  int connectors = 0, connectors_moved = 0, tower = 0;
  for (const auto& info : before.tensors()) {
    const bool same = at::equal(before.tensor(info.name), after.tensor(info.name));
    if (info.name.rfind("encoders.image.connectors.", 0) == 0) {
      ++connectors;
      connectors_moved += !same;
    }
    if (info.name.rfind("encoders.image.encoder.", 0) == 0) {
      ++tower;
      EXPECT_TRUE(same) << info.name;
    }
  }
  EXPECT_GT(connectors, 0);
  EXPECT_EQ(connectors_moved, connectors);
  EXPECT_GT(tower, 0);
}

TEST(ExampleShards, BadShardsAreRefusedWithEveryProblem) {
  TempDir dir;
  Shard shard = make_shard(12);
  shard.tokens[1][kWidth - 1] = kPlaceholder;  // a run past the inputs
  const auto run = write_run(dir, shard);
  Shard other = make_shard(13);
  other.tokens[1][0] = kPlaceholder;  // with the next two, 3 placeholders: no whole run
  other.tokens[1].narrow(0, 8, 2).fill_(kPlaceholder);
  weights::write_safetensors(dir.at("shards/1.safetensors"),
                             {{"tokens", other.tokens}, {"pixel_values", other.pixels},
                              {"labels", other.tokens}});
  weights::write_safetensors(dir.at("shards/2.safetensors"),
                             {{"tokens", other.tokens.narrow(0, 0, 1).contiguous()},
                              {"pixel_values", other.pixels}});
  const auto r = blockc("train " + run + " --out " + dir.at("out"));
  EXPECT_EQ(r.code, 1);
  const std::string shards = dir.at("shards");
  for (const std::string& message :
       {shards + ": the examples cannot be used:",
        shards + "/0.safetensors: row 1 ends in a placeholder of `pixel_values` (id 63): its run "
                 "would reach past the inputs",
        shards + "/1.safetensors: `labels` is not an input of the model (it takes tokens, "
                 "pixel_values)",
        shards + "/1.safetensors: row 1 holds 3 placeholders of `pixel_values` (id 63), not "
                 "whole runs of 4",
        shards + "/2.safetensors: the rows hold 1 placeholder runs of `pixel_values` but "
                 "`pixel_values` has 4 items"})
    EXPECT_NE(r.err.find(message), std::string::npos) << message << "\n" << r.err;
}

TEST(ExampleShards, AnEarlyFusionModelNeedsExamples) {
  TempDir dir;
  const auto run = write_run(dir, make_shard(14));
  const auto r = blockc("validate " + run + " --set train.data.format=nanogpt");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("train.data.format: an early-fusion model trains on examples with their "
                       "media: set format: examples (token files hold no images)"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace blocks
