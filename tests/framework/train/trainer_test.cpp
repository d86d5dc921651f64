// blockc train and blocks::train end to end: the loop against nanoGPT's, exact resumption (after --until and after kill -9),
// damaged checkpoints, run folders of other runs and models, non-finite losses, a full disk,
// bad token files, data parallelism over two processes, and the run section's validation.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "blocks/schedules/constant.h"
#include "blocks/schedules/cosine.h"
#include "blocks/schedules/linear.h"
#include "framework/data/tokens.h"
#include "framework/weights/safetensors.h"
#include "tests/support/blockc_run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"
#include "tests/support/ports.h"

namespace blocks {
namespace {

namespace fs = std::filesystem;
using testing::blockc;
using testing::TempDir;

constexpr const char* kModel = R"(version: 1
model:
  type: language_model
  hidden_size: 32
  add_linear_biases: true
  init_std: 0.02
  embeddings: {vocab_size: 256, max_positions: 32}
  decoder:
    type: repeat
    num_layers: 2
    block:
      type: transformer
      mixer: {type: attention, heads: 2, dropout: 0.1}
      mlp: {type: mlp, intermediate_size: 64, activation: gelu}
      normalization: {type: layer_norm, epsilon: 1.0e-5}
      dropout: 0.1
  head:
    normalization: {type: layer_norm, epsilon: 1.0e-5}
    tied: true
)";

constexpr const char* kTrain = R"(train:
  steps: 12
  seed: 3
  data: {train: data/train.bin, validation: data/val.bin, sequence_length: 16, micro_batch: 4,
         accumulation: 2}
  optimizer: {lr: 3.0e-3, beta2: 0.95, weight_decay: 0.1}
  schedule: {type: cosine, warmup_steps: 2, min_lr: 3.0e-4}
  eval: {every: 6, batches: 2}
  checkpoint: {every: 3, keep: 10}
)";

// English text as bytes: the README, so that the loss has something to learn.
void write_data(const TempDir& dir) {
  std::ifstream in(std::string(BLOCKS_SOURCE_DIR) + "/README.md", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  std::vector<uint32_t> tokens(text.begin(), text.end());
  for (auto& t : tokens) t &= 0xff;
  const size_t split = tokens.size() * 9 / 10;
  fs::create_directories(dir.path() / "data");
  data::write_tokens(dir.at("data/train.bin"), {tokens.begin(), tokens.begin() + split},
                     data::TokenFormat::nanogpt, 2);
  data::write_tokens(dir.at("data/val.bin"), {tokens.begin() + split, tokens.end()},
                     data::TokenFormat::nanogpt, 2);
}

std::string run_file(const TempDir& dir, const std::string& extra_train = "") {
  write_data(dir);
  return dir.write("run.yaml", std::string(kModel) + kTrain + extra_train);
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::string checkpoint(const TempDir& dir, const std::string& run, int step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08d", step);
  return dir.at(run + "/checkpoints/" + name);
}

// The schedules against their formulas written out: nanoGPT's get_lr for cosine (warmup
// lr (it + 1) / (warmup + 1), cosine to min_lr at decay_steps, min_lr after), a straight line
// for linear, the peak for constant.
TEST(Schedules, FollowTheirFormulas) {
  CosineScheduleConfig cosine;
  cosine.warmup_steps = 10;
  cosine.min_lr = 1e-4;
  cosine.decay_steps = 100;
  LinearScheduleConfig linear;
  linear.warmup_steps = 10;
  linear.min_lr = 1e-4;
  ConstantScheduleConfig constant;
  constant.warmup_steps = 4;
  const double lr = 1e-3;
  for (int64_t it = 0; it < 130; ++it) {
    const double warm = lr * static_cast<double>(it + 1) / 11.0;
    const double ratio = static_cast<double>(it - 10) / 90.0;
    const double cos_expected =
        it < 10 ? warm : it > 100 ? 1e-4 : 1e-4 + 0.5 * (1 + std::cos(M_PI * ratio)) * (lr - 1e-4);
    EXPECT_DOUBLE_EQ(cosine.lr_at(it, 130, lr), cos_expected) << it;
    // linear decays over the run's 130 steps when decay_steps is unset
    const double line = it < 10 ? warm : it >= 130 ? 1e-4 : lr + (it - 10) / 120.0 * (1e-4 - lr);
    EXPECT_NEAR(linear.lr_at(it, 130, lr), line, 1e-15) << it;
    EXPECT_DOUBLE_EQ(constant.lr_at(it, 130, lr), it < 4 ? lr * (it + 1) / 5.0 : lr) << it;
  }
  EXPECT_DOUBLE_EQ(cosine.lr_at(100, 130, lr), 1e-4);
  EXPECT_NEAR(linear.lr_at(129, 130, lr), lr + 119 / 120.0 * (1e-4 - lr), 1e-15);
}

TEST(Train, LossFallsAndTheLogHasEveryStep) {
  TempDir dir;
  const auto run = run_file(dir);
  const auto r = blockc("train " + run + " --out " + dir.at("a"));
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream log(dir.at("a/log.jsonl"));
  std::vector<double> losses;
  int evals = 0;
  for (std::string line; std::getline(log, line);) {
    const auto json = config::Json::parse(line);
    if (json.contains("loss")) {
      losses.push_back(json["loss"].get<double>());
      EXPECT_EQ(json["step"].get<int64_t>(), static_cast<int64_t>(losses.size()));
      EXPECT_EQ(json["tokens"].get<int64_t>(), 4 * 16 * 2 * json["step"].get<int64_t>());
      EXPECT_GT(json["tokens_per_s"].get<double>(), 0);
    }
    if (json.contains("val_loss")) ++evals;
  }
  ASSERT_EQ(losses.size(), 12u);
  EXPECT_LT(losses.back(), losses.front() - 0.5);
  EXPECT_EQ(evals, 2);
  EXPECT_NE(r.out.find("trained steps 1..12"), std::string::npos) << r.out;
  for (int step : {3, 6, 9, 12}) EXPECT_TRUE(fs::exists(checkpoint(dir, "a", step) + "/state.json"));
}

// 12 steps straight, and 6 (--until), then --resume for the rest: the same bytes, weights and
// moments (dropout is on, so the RNG state must come back too).
TEST(Train, ResumeAfterUntilIsBitIdentical) {
  TempDir dir;
  const auto run = run_file(dir);
  ASSERT_EQ(blockc("train " + run + " --out " + dir.at("straight")).code, 0);
  const auto first = blockc("train " + run + " --out " + dir.at("split") + " --until 6");
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_FALSE(fs::exists(checkpoint(dir, "split", 9)));
  const auto second = blockc("train --resume " + dir.at("split"));
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.out.find("trained steps 7..12"), std::string::npos) << second.out;
  for (const char* file : {"/model.safetensors", "/optimizer.safetensors"})
    EXPECT_EQ(read(checkpoint(dir, "straight", 12) + file), read(checkpoint(dir, "split", 12) + file))
        << file;
}

// kill -9 at whatever point the run has reached after its first checkpoint, then --resume:
// the final weights equal the unbroken run's, byte for byte.
TEST(Train, ResumeAfterKillIsBitIdentical) {
  TempDir dir;
  const auto run = run_file(dir, "  log_every: 1\n");
  ASSERT_EQ(blockc("train " + run + " --out " + dir.at("straight")).code, 0);
  const std::string out = dir.at("killed");
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string quiet = dir.at("killed.err");
    freopen(quiet.c_str(), "w", stderr);
    freopen(quiet.c_str(), "w", stdout);
    execl(BLOCKC, BLOCKC, "train", run.c_str(), "--out", out.c_str(), nullptr);
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(checkpoint(dir, "killed", 3)) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const bool finished = WIFEXITED(status);
  const auto resumed = blockc("train --resume " + out);
  if (finished) {
    GTEST_SKIP() << "the run finished before the kill";
  }
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(read(checkpoint(dir, "straight", 12) + "/model.safetensors"),
            read(checkpoint(dir, "killed", 12) + "/model.safetensors"));
  // No temporary of a checkpoint cut by the kill is left among the checkpoints.
  for (const auto& entry : fs::directory_iterator(out + "/checkpoints"))
    EXPECT_EQ(entry.path().filename().string().rfind("step-", 0), 0u) << entry.path();
}

TEST(Train, DamagedCheckpointFallsBackToThePreviousOne) {
  TempDir dir;
  const auto run = run_file(dir);
  ASSERT_EQ(blockc("train " + run + " --out " + dir.at("a") + " --until 6").code, 0);
  const std::string newest = checkpoint(dir, "a", 6) + "/model.safetensors";
  fs::resize_file(newest, fs::file_size(newest) - 100);
  const auto r = blockc("train --resume " + dir.at("a") + " --until 6");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("skipping a damaged checkpoint: " + newest + ": "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("falling back to " + checkpoint(dir, "a", 3)), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("trained steps 4..6"), std::string::npos) << r.out;

  // A flipped byte of the optimizer state is found by the hash.
  const std::string moments = checkpoint(dir, "a", 6) + "/optimizer.safetensors";
  std::string bytes = read(moments);
  bytes[bytes.size() - 3] ^= 0x40;
  std::ofstream(moments, std::ios::binary) << bytes;
  const auto flipped = blockc("train --resume " + dir.at("a") + " --until 6");
  EXPECT_NE(flipped.err.find(moments + ": its bytes differ from those saved (hash mismatch)"),
            std::string::npos)
      << flipped.err;
}

TEST(Train, RunFolderOfAnotherRunOrModel) {
  TempDir dir;
  const auto run = run_file(dir);
  ASSERT_EQ(blockc("train " + run + " --out " + dir.at("a") + " --until 3").code, 0);
  const auto again = blockc("train " + run + " --out " + dir.at("a"));
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find(dir.at("a") + " holds checkpoints of a run; continue it with --resume"),
            std::string::npos)
      << again.err;
  const auto wider = blockc("train " + run + " --resume " + dir.at("a") +
                            " --set model.hidden_size=48 --set model.decoder.num_layers=3");
  EXPECT_EQ(wider.code, 1);
  EXPECT_NE(wider.err.find("hidden_size"), std::string::npos) << wider.err;
  EXPECT_NE(wider.err.find("num_layers"), std::string::npos) << wider.err;
  const auto empty = blockc("train " + run + " --resume " + dir.at("nothing"));
  EXPECT_EQ(empty.code, 1);
  EXPECT_NE(empty.err.find(dir.at("nothing") + " has no whole checkpoint to resume from"),
            std::string::npos)
      << empty.err;
}

TEST(Train, NonFiniteLossStopsOrSkips) {
  TempDir dir;
  const auto run = run_file(dir);
  const std::string blow_up = " --set train.optimizer.lr=1e30 --set train.clip_grad_norm=0";
  const auto stop = blockc("train " + run + " --out " + dir.at("a") + blow_up);
  EXPECT_EQ(stop.code, 1);
  EXPECT_NE(stop.err.find(": the loss is nan; "), std::string::npos) << stop.err;
  const auto skip = blockc("train " + run + " --out " + dir.at("b") + blow_up +
                           " --set train.on_nonfinite=skip");
  EXPECT_EQ(skip.code, 0) << skip.err;
  EXPECT_NE(read(dir.at("b/log.jsonl")).find("\"skipped\":\"the loss is nan\""), std::string::npos);
}

TEST(Train, TokenOutsideTheVocabularyIsNamed) {
  TempDir dir;
  const auto run = run_file(dir);
  std::vector<uint32_t> tokens(200, 7);
  tokens[50] = 300;
  data::write_tokens(dir.at("data/train.bin"), tokens, data::TokenFormat::nanogpt, 2);
  const auto r = blockc("train " + run + " --out " + dir.at("a") +
                        " --set train.data.sampling=sequential");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("data/train.bin: token 300 at position 50 is outside the vocabulary (256 "
                       "ids)"),
            std::string::npos)
      << r.err;
}

TEST(Train, FullDiskLeavesThePreviousCheckpoint) {
  TempDir dir;
  const auto run = run_file(dir);
  ASSERT_EQ(blockc("train " + run + " --out " + dir.at("a") + " --until 3").code, 0);
  const std::string before = read(checkpoint(dir, "a", 3) + "/model.safetensors");
  // A file size limit below one checkpoint file: the next save fails part-way.
  const std::string command = "bash -c 'trap \"\" XFSZ; ulimit -f 64; exec " + std::string(BLOCKC) +
                              " train --resume " + dir.at("a") + " --until 6' 2>" +
                              dir.at("err");
  const int status = std::system(command.c_str());
  EXPECT_NE(status, 0);
  const std::string err = read(dir.at("err"));
  EXPECT_NE(err.find("saving the checkpoint of step 6 failed: "), std::string::npos) << err;
  EXPECT_NE(err.find(checkpoint(dir, "a", 3) + " is intact"), std::string::npos) << err;
  EXPECT_EQ(read(checkpoint(dir, "a", 3) + "/model.safetensors"), before);
  for (const auto& entry : fs::directory_iterator(dir.at("a/checkpoints")))
    EXPECT_EQ(entry.path().filename().string().rfind("step-", 0), 0u) << entry.path();
}


// Runs `blockc ARGS` as 2 ranks with torchrun's variables; false (and a failure with both
// ranks' output) unless both exit 0.
bool two_ranks(const TempDir& dir, const std::string& args) {
  const int port = testing::free_port();
  std::string launch = "bash -c '";
  for (int rank = 0; rank < 2; ++rank)
    launch += "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
              " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
              " timeout 120 " + BLOCKC + " " + args + " >" + dir.at("rank" + std::to_string(rank)) +
              " 2>&1 & pid" + std::to_string(rank) + "=$!; ";
  launch += "wait $pid0 && wait $pid1'";
  const bool ok = std::system(launch.c_str()) == 0;
  EXPECT_TRUE(ok) << read(dir.at("rank0")) << read(dir.at("rank1"));
  return ok;
}

// torchrun --nproc-per-node 2 --no-python blockc train ...: 2 ranks x 2 rows give the weights
// 1 rank x 4 rows gives (the windows are the same rows; the sums differ only in float order).
TEST(Train, TwoRanksEqualOneRankOfTwiceTheRows) {
  TempDir dir;
  const auto run = run_file(dir);
  const std::string sets = " --set train.data.accumulation=1 --set train.steps=4 "
                           "--set model.decoder.block.dropout=0 "
                           "--set model.decoder.block.mixer.dropout=0";
  ASSERT_EQ(blockc("train " + run + " --out " + dir.at("one") + sets).code, 0);
  ASSERT_TRUE(two_ranks(dir, "train " + run + " --out " + dir.at("two") + sets +
                                 " --set train.data.micro_batch=2"));
  const auto one = weights::SafetensorsFile::open(checkpoint(dir, "one", 4) + "/model.safetensors");
  const auto two = weights::SafetensorsFile::open(checkpoint(dir, "two", 4) + "/model.safetensors");
  ASSERT_EQ(one.tensors().size(), two.tensors().size());
  for (const auto& info : one.tensors()) {
    const at::Tensor a = one.tensor(info.name), b = two.tensor(info.name);
    EXPECT_TRUE(at::allclose(a, b, 1e-4, 1e-5))
        << info.name << ": max |diff| " << (a - b).abs().max().item<double>();
  }
  // The step losses agree as well: rank 0 logs the mean over both ranks.
  EXPECT_NE(read(dir.at("two/log.jsonl")).find("\"world_size\":2"), std::string::npos);
}

// A data-parallel run stopped (--until) and resumed on its 2 ranks gives the bytes of the
// unbroken run, dropout on: the ranks draw the same windows and random streams again.
TEST(Train, TwoRanksResumeAsIfNeverStopped) {
  TempDir dir;
  const auto run = run_file(dir);
  const std::string sets = " --set train.steps=4 --set train.data.micro_batch=2 "
                           "--set train.checkpoint.every=2";
  ASSERT_TRUE(two_ranks(dir, "train " + run + " --out " + dir.at("straight") + sets));
  ASSERT_TRUE(two_ranks(dir, "train " + run + " --out " + dir.at("split") + sets + " --until 2"));
  ASSERT_TRUE(two_ranks(dir, "train --resume " + dir.at("split")));
  for (const char* file : {"/model.safetensors", "/optimizer.safetensors"})
    EXPECT_EQ(read(checkpoint(dir, "straight", 4) + file), read(checkpoint(dir, "split", 4) + file))
        << file;
}

// The launcher itself: torchrun --no-python starts blockc train on 2 ranks (Debian 12's torchrun
// needs --redirects 1 --tee 1, see distributed_test.cpp) and they train to 1 rank's weights.
TEST(Train, TorchrunLaunchesTheRanks) {
  const std::string torchrun = "/usr/bin/torchrun";
  if (!fs::exists(torchrun)) {
    if (std::getenv("BLOCKS_REQUIRE_REFERENCES")) ADD_FAILURE() << "no " << torchrun << " in CI";
    GTEST_SKIP() << "no " << torchrun << " (Debian's python3-torch)";
  }
  TempDir dir;
  const auto run = run_file(dir);
  const std::string sets = " --set train.data.accumulation=1 --set train.steps=3 "
                           "--set model.decoder.block.dropout=0 "
                           "--set model.decoder.block.mixer.dropout=0";
  ASSERT_EQ(blockc("train " + run + " --out " + dir.at("one") + sets).code, 0);
  const std::string command =
      "timeout 180 " + torchrun + " --nproc_per_node=2 --master_addr=127.0.0.1 --master_port=" +
      std::to_string(testing::free_port()) + " --redirects 1 --tee 1 --log_dir " +
      dir.at("logs") + " --no_python " + BLOCKC + " train " + run + " --out " + dir.at("two") +
      sets + " --set train.data.micro_batch=2 >" + dir.at("torchrun.txt") + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read(dir.at("torchrun.txt"));
  const auto one = weights::SafetensorsFile::open(checkpoint(dir, "one", 3) + "/model.safetensors");
  const auto two = weights::SafetensorsFile::open(checkpoint(dir, "two", 3) + "/model.safetensors");
  for (const auto& info : one.tensors())
    EXPECT_TRUE(at::allclose(one.tensor(info.name), two.tensor(info.name), 1e-4, 1e-5))
        << info.name;
  EXPECT_NE(read(dir.at("two/log.jsonl")).find("\"world_size\":2"), std::string::npos);
}

// A rank killed mid-run (kill -9) makes the other fail with an error naming the collective
// within the --timeout, instead of waiting for it forever.
TEST(Train, ADeadRankEndsTheOthersWithAnError) {
  TempDir dir;
  const auto run = run_file(dir);
  const int port = testing::free_port();
  auto rank = [&](int r) {
    return "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
           " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
  };
  const std::string train = std::string(BLOCKC) + " train " + run + " --out " + dir.at("two") +
                            " --timeout 20 --set train.steps=100000 --set train.data.micro_batch=2";
  // Rank 1 is blockc itself (its pid is $p1), so that kill -9 hits the trainer.
  const std::string script =
      rank(0) + "timeout 120 " + train + " >" + dir.at("rank0") + " 2>&1 & p0=$!\n" + rank(1) +
      train + " >" + dir.at("rank1") + " 2>&1 & p1=$!\n" +
      "for i in $(seq 1200); do grep -q '\"loss\"' " + dir.at("two/log.jsonl") +
      " 2>/dev/null && break; sleep 0.1; done\n"
      "kill -9 $p1; start=$(date +%s%N); wait $p0; code=$?; end=$(date +%s%N)\n"
      "echo \"$code $(( (end - start) / 1000000 ))\" >" + dir.at("result") + "\n";
  std::ofstream(dir.at("kill.sh")) << script;
  ASSERT_EQ(std::system(("bash " + dir.at("kill.sh")).c_str()), 0);
  std::istringstream result(read(dir.at("result")));
  int code = -1;
  int64_t ms = -1;
  result >> code >> ms;
  const std::string log = read(dir.at("rank0"));
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, 124) << "rank 0 hung until the outer timeout\n" << log;
  EXPECT_GE(ms, 0);
  EXPECT_LT(ms, 40000) << log;
  EXPECT_NE(log.find("a peer process may have died"), std::string::npos) << log;
}

// Every tensor of `a` and `b` by name: which are byte-identical and which differ.
std::pair<std::vector<std::string>, std::vector<std::string>> same_and_changed(
    const std::string& a, const std::string& b) {
  const auto first = weights::SafetensorsFile::open(a);
  const auto second = weights::SafetensorsFile::open(b);
  std::vector<std::string> same, changed;
  for (const auto& info : first.tensors())
    (at::equal(first.tensor(info.name), second.tensor(info.name)) ? same : changed)
        .push_back(info.name);
  return {same, changed};
}

// LoRA on query and value with the MLPs frozen by lr scale 0: after training, exactly the
// adapters differ from the start; the base weights and the frozen MLPs are the same bytes.
TEST(Train, LoraTrainsOnlyAdaptersAndFrozenPartsStay) {
  TempDir dir;
  write_data(dir);
  std::string model = kModel;
  model.insert(model.find("  head:"), "  peft: {type: lora, rank: 4, targets: [query, value]}\n");
  const auto run = dir.write("run.yaml", model + kTrain);
  const std::string sets = " --set model.decoder.block.mlp.lr_scale=0 --set train.steps=3";
  ASSERT_EQ(blockc("init " + run + " --seed 3 -o " + dir.at("init.safetensors") + sets).code, 0);
  const auto r = blockc("train " + run + " --out " + dir.at("b") + sets);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto [same, changed] =
      same_and_changed(dir.at("init.safetensors"), checkpoint(dir, "b", 3) + "/model.safetensors");
  ASSERT_FALSE(changed.empty());
  for (const auto& name : changed)
    EXPECT_TRUE(name.find(".lora_a") != std::string::npos ||
                name.find(".lora_b") != std::string::npos)
        << name << " changed";
  // lora_b starts at zero, so both adapter matrices of each target must have moved.
  EXPECT_EQ(changed.size(), 2u * 2 * 2) << "2 layers x query, value x lora_a, lora_b";
  for (const auto& name : same) EXPECT_EQ(name.find(".lora_"), std::string::npos) << name;

  // Exported with the adapters merged, the model without PEFT computes the same logits.
  const std::string trained = checkpoint(dir, "b", 3) + "/model.safetensors";
  auto tokens = at::randint(0, 256, {2, 16}, at::kLong);
  weights::write_safetensors(dir.at("in.safetensors"), {{"tokens", tokens}});
  const auto lora = blockc("forward --model " + run + sets + " --weights " + trained + " --input " +
                           dir.at("in.safetensors") + " --output " + dir.at("lora.safetensors"));
  ASSERT_EQ(lora.code, 0) << lora.err;
  const auto merge = blockc("export --model " + run + sets + " --weights " + trained +
                            " --merge-adapters -o " + dir.at("merged.safetensors"));
  ASSERT_EQ(merge.code, 0) << merge.err;
  EXPECT_NE(merge.err.find("merged the adapters of 4 linear layers"), std::string::npos)
      << merge.err;
  const auto plain = blockc("forward --model " + run + sets + " --set model.peft.type=none" +
                            " --weights " + dir.at("merged.safetensors") + " --input " +
                            dir.at("in.safetensors") + " --output " + dir.at("plain.safetensors"));
  ASSERT_EQ(plain.code, 0) << plain.err;
  const at::Tensor a = weights::SafetensorsFile::open(dir.at("lora.safetensors")).tensor("logits");
  const at::Tensor b = weights::SafetensorsFile::open(dir.at("plain.safetensors")).tensor("logits");
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
  const auto merged = weights::SafetensorsFile::open(dir.at("merged.safetensors"));
  for (const auto& info : merged.tensors())
    EXPECT_EQ(info.name.find(".lora_"), std::string::npos) << info.name;

  // The adapters alone: exactly the lora tensors, with their trained values.
  const auto alone = blockc("export --model " + run + sets + " --weights " + trained +
                            " --adapters-only -o " + dir.at("adapters.safetensors"));
  ASSERT_EQ(alone.code, 0) << alone.err;
  const auto adapters = weights::SafetensorsFile::open(dir.at("adapters.safetensors"));
  EXPECT_EQ(adapters.tensors().size(), changed.size());
  const auto full = weights::SafetensorsFile::open(trained);
  for (const auto& info : adapters.tensors())
    EXPECT_TRUE(at::equal(adapters.tensor(info.name), full.tensor(info.name))) << info.name;
}

// The tensor names of a safetensors file, sorted.
std::vector<std::string> sorted_names(const std::string& path) {
  const auto file = weights::SafetensorsFile::open(path);
  std::vector<std::string> out;
  for (const auto& info : file.tensors()) out.push_back(info.name);
  std::sort(out.begin(), out.end());
  return out;
}

// LoRA with PEFT's modules_to_save (layer 1's MLP trains in full): training changes the adapters
// and that MLP only; the adapters file and the PEFT folder (GPT-2's names) hold exactly those,
// and either, loaded with --adapters onto the initial weights, computes what the trained
// checkpoint computes.
TEST(Train, ModulesToSaveTrainBesideTheAdapters) {
  TempDir dir;
  write_data(dir);
  std::string model = kModel;
  model.insert(model.find("  head:"),
               "  peft: {type: lora, rank: 4, alpha: 8, targets: [query, value], "
               "modules_to_save: [{name: mlp, layers: [1, 1]}]}\n");
  const auto run = dir.write("run.yaml", model + kTrain);
  const std::string sets = " --set train.steps=3";
  ASSERT_EQ(blockc("init " + run + " --seed 3 -o " + dir.at("init.safetensors") + sets).code, 0);
  const auto r = blockc("train " + run + " --out " + dir.at("b") + sets);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string trained = checkpoint(dir, "b", 3) + "/model.safetensors";
  auto [same, changed] = same_and_changed(dir.at("init.safetensors"), trained);
  std::sort(changed.begin(), changed.end());
  std::vector<std::string> expected;
  for (const char* layer : {"0", "1"})
    for (const char* linear : {"query", "value"})
      for (const char* part : {"lora_a", "lora_b"})
        expected.push_back(std::string("decoder.") + layer + ".mixer." + linear + "." + part);
  for (const char* linear : {"down", "up"})
    for (const char* part : {"bias", "weight"})
      expected.push_back(std::string("decoder.1.mlp.") + linear + "." + part);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(changed, expected);

  auto tokens = at::randint(0, 256, {2, 16}, at::kLong);
  weights::write_safetensors(dir.at("in.safetensors"), {{"tokens", tokens}});
  auto logits = [&](const std::string& weights, const std::string& name) {
    const auto f = blockc("forward --model " + run + sets + " --weights " + weights +
                          " --input " + dir.at("in.safetensors") + " --output " + dir.at(name));
    EXPECT_EQ(f.code, 0) << f.err;
    return f.code == 0 ? weights::SafetensorsFile::open(dir.at(name)).tensor("logits")
                       : at::Tensor();
  };
  const at::Tensor want = logits(trained, "trained.safetensors");
  ASSERT_TRUE(want.defined());

  const auto alone = blockc("export --model " + run + sets + " --weights " + trained +
                            " --adapters-only -o " + dir.at("adapters.safetensors"));
  ASSERT_EQ(alone.code, 0) << alone.err;
  EXPECT_EQ(sorted_names(dir.at("adapters.safetensors")), expected);
  const at::Tensor from_file = logits(dir.at("init.safetensors") + " --adapters " +
                                          dir.at("adapters.safetensors"),
                                      "file.safetensors");
  ASSERT_TRUE(from_file.defined());
  EXPECT_TRUE(at::equal(from_file, want));

  const auto folder = blockc("export --model " + run + sets + " --weights " + trained +
                             " --adapters-only --to hf --model-type gpt2 -o " + dir.at("peft"));
  ASSERT_EQ(folder.code, 0) << folder.err;
  const std::vector<std::string> peft_keys = {
      "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
      "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
      "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight",
      "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight",
      "base_model.model.transformer.h.1.mlp.c_fc.bias",
      "base_model.model.transformer.h.1.mlp.c_fc.weight",
      "base_model.model.transformer.h.1.mlp.c_proj.bias",
      "base_model.model.transformer.h.1.mlp.c_proj.weight"};
  EXPECT_EQ(sorted_names(dir.at("peft/adapter_model.safetensors")), peft_keys);
  const at::Tensor from_folder =
      logits(dir.at("init.safetensors") + " --adapters " + dir.at("peft") + " --model-type gpt2",
             "folder.safetensors");
  ASSERT_TRUE(from_folder.defined());
  EXPECT_LT((from_folder - want).abs().max().item<double>(), 1e-5);

  // A run that starts from the initial weights and the PEFT folder (train.start.adapters) holds
  // the trained model: one step at lr 1e-30 moves no float32 of it.
  const auto resumed = blockc(
      "train " + run + " --out " + dir.at("c") + " --set train.steps=1 --set train.optimizer.lr=1e-30" +
      " --set train.start.weights=" + dir.at("init.safetensors") +
      " --set train.start.adapters=" + dir.at("peft") + " --set train.start.model_type=gpt2");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  const auto [kept, moved] =
      same_and_changed(trained, checkpoint(dir, "c", 1) + "/model.safetensors");
  EXPECT_TRUE(moved.empty()) << moved.size() << " tensors moved, the first " << moved.front();
}

TEST(Train, LoraOnAFrozenLayerIsAnError) {
  TempDir dir;
  write_data(dir);
  std::string model = kModel;
  model.insert(model.find("  head:"), "  peft: {type: lora, rank: 4, targets: [query, up]}\n");
  const auto run = dir.write("run.yaml", model + kTrain);
  const auto r = blockc("validate " + run + " --set model.decoder.block.mlp.lr_scale=0");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("model.peft: LoRA adapters on 1 frozen linear layer(s) (lr scale 0 or a "
                       "fusion model's trainable toggles) could never train: "
                       "model.decoder.block.mlp.up; leave them out of `targets`, or set "
                       "allow_frozen_targets: true to keep them"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(blockc("validate " + run + " --set model.decoder.block.mlp.lr_scale=0 "
                   "--set model.peft.allow_frozen_targets=true").code,
            0);
}

// bfloat16 autocast of the forward: the loss stays near float32's (the weights, gradients and
// moments stay float32).
TEST(Train, Bfloat16AutocastTracksFloat32) {
  TempDir dir;
  const auto run = run_file(dir);
  const std::string sets = " --set train.steps=4 --set train.eval.every=0";
  ASSERT_EQ(blockc("train " + run + " --out " + dir.at("f32") + sets).code, 0);
  const auto r = blockc("train " + run + " --out " + dir.at("bf16") + sets +
                        " --set train.precision=bfloat16");
  ASSERT_EQ(r.code, 0) << r.err;
  auto losses = [&](const std::string& run_dir) {
    std::vector<double> out;
    std::ifstream log(dir.at(run_dir + "/log.jsonl"));
    for (std::string line; std::getline(log, line);)
      if (auto json = config::Json::parse(line); json.contains("loss"))
        out.push_back(json["loss"].get<double>());
    return out;
  };
  const auto f32 = losses("f32"), bf16 = losses("bf16");
  ASSERT_EQ(f32.size(), 4u);
  ASSERT_EQ(bf16.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(bf16[i], f32[i], 0.05) << i;
    EXPECT_NE(bf16[i], f32[i]) << "autocast changed nothing at step " << i + 1;
  }
  EXPECT_EQ(weights::SafetensorsFile::open(checkpoint(dir, "bf16", 4) + "/model.safetensors")
                .tensors()
                .front()
                .dtype,
            "F32");
}

TEST(Train, RunSectionErrorsComeAllAtOnce) {
  TempDir dir;
  write_data(dir);
  const auto run = dir.write("bad.yaml", std::string(kModel) + R"(train:
  steps: -1
  stpes: 3
  data: {train: data/train.bin, sequence_length: 64, micro_batch: two}
  optimizer: {lr: 0}
  schedule: {type: cosine, warmup_steps: 10, decay_steps: 5}
  eval: {every: 2}
)");
  const auto r = blockc("validate " + run);
  EXPECT_EQ(r.code, 1);
  for (const char* text :
       {"bad.yaml:21:10: error: train.steps: must be >= 1, found -1\n",
        "bad.yaml:22:3: error: train: unknown field 'stpes' in train; did you mean 'steps'? "
        "(valid: steps, seed, start, data, optimizer, schedule, clip_grad_norm, precision, "
        "log_every, on_nonfinite, eval, checkpoint)\n",
        "bad.yaml:23:50: error: train.data.sequence_length: sequence_length 64 is past the "
        "model's 32 positions (model.embeddings.max_positions)\n",
        "bad.yaml:23:67: error: train.data.micro_batch: expected an integer, found 'two'\n",
        "bad.yaml:24:19: error: train.optimizer.lr: must be > 0, found 0\n"})
    EXPECT_NE(r.err.find(text), std::string::npos) << text << "\n" << r.err;
}

TEST(Train, AFileWithoutATrainSectionOrNoFileAtAll) {
  TempDir dir;
  const auto model = dir.write("model.yaml", kModel);
  const auto r = blockc("train " + model + " --out " + dir.at("a"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(model + ": no `train:` section: a run file is a config with a model and a "
                       "train section (see `blockc explain train`)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir.at("a")));
  const auto none = blockc("train");
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("give a run file, or --resume RUN_DIR"), std::string::npos) << none.err;
}

TEST(Train, RunSectionRulesAgainstTheModel) {
  TempDir dir;
  write_data(dir);
  const auto run = dir.write("rules.yaml", std::string(kModel) + R"(train:
  steps: 3
  data: {train: data/train.bin, sequence_length: 64}
  optimizer: {lr: 1.0e-3}
  schedule: {type: cosine, warmup_steps: 10, decay_steps: 5}
  eval: {every: 2}
)");
  const auto r = blockc("validate " + run);
  EXPECT_EQ(r.code, 1);
  for (const char* text :
       {"train.data.sequence_length: sequence_length 64 is past the model's 32 positions "
        "(model.embeddings.max_positions)",
        "train.schedule.decay_steps: decay_steps (5) must be above warmup_steps (10)",
        "train.eval: eval.every is set but data.validation names no file"})
    EXPECT_NE(r.err.find(text), std::string::npos) << text << "\n" << r.err;
}

// nanoGPT parity: blockc train against nanoGPT's train.py loop (tests/support/nanogpt_reference.py,
// written from karpathy/nanoGPT's model.py and train.py at 3adf61e): the same initial weights,
// the same windows (blocks' sequential sampling), AdamW with decay on >= 2-D parameters, warmup
// then cosine to min_lr and past lr_decay_iters, gradient accumulation averaging, clipping
// before the step. Per-step losses agree within 1e-4, and so do the final weights.
TEST(NanoGptParity, LossesLrsNormsAndWeightsMatchTrainPy) {
  if (!testing::have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  TempDir dir;
  const std::string model = BLOCKS_SOURCE_DIR "/tests/fixtures/train/nanogpt-tiny.yaml";
  ASSERT_EQ(blockc("init " + model + " --seed 3 -o " + dir.at("init.safetensors")).code, 0);
  std::mt19937 random(7);
  std::vector<uint32_t> tokens(4000);
  for (auto& t : tokens) t = random() % 96;
  data::write_tokens(dir.at("train.bin"), tokens, data::TokenFormat::nanogpt, 2);
  const auto run = dir.write("run.yaml", "version: 1\nextends: " + model + R"(
train:
  steps: 10
  start: {weights: init.safetensors}
  data: {train: train.bin, sequence_length: 16, micro_batch: 2, accumulation: 2,
         sampling: sequential}
  optimizer: {lr: 1.0e-3, beta1: 0.9, beta2: 0.95, weight_decay: 0.1}
  schedule: {type: cosine, warmup_steps: 2, min_lr: 1.0e-4, decay_steps: 8}
  clip_grad_norm: 1.0
)");
  const auto trained = blockc("train " + run + " --out " + dir.at("run"));
  ASSERT_EQ(trained.code, 0) << trained.err;

  dir.write("spec.json", R"({"model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "vocab_size": 96,
    "block_size": 32, "bias": true}, "init": "init.safetensors", "data": "train.bin",
    "sequence_length": 16, "micro_batch": 2, "accumulation": 2, "learning_rate": 1e-3,
    "min_lr": 1e-4, "warmup_iters": 2, "lr_decay_iters": 8, "decay_lr": true,
    "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "grad_clip": 1.0, "steps": 10,
    "out": "final.safetensors"})");
  const std::string command = std::string(testing::reference_python()) + " " +
                              BLOCKS_SOURCE_DIR "/tests/support/nanogpt_reference.py " +
                              dir.at("spec.json") + " >" + dir.at("reference.json") + " 2>" +
                              dir.at("reference.err");
  ASSERT_EQ(std::system(command.c_str()), 0) << dir.at("reference.err");
  std::ifstream in(dir.at("reference.json"));
  const auto reference = config::Json::parse(in);

  std::ifstream log(dir.at("run/log.jsonl"));
  size_t step = 0;
  for (std::string line; std::getline(log, line);) {
    const auto json = config::Json::parse(line);
    if (!json.contains("loss")) continue;
    ASSERT_LT(step, reference["losses"].size());
    EXPECT_NEAR(json["loss"].get<double>(), reference["losses"][step].get<double>(), 1e-4)
        << "step " << step + 1;
    EXPECT_NEAR(json["lr"].get<double>(), reference["lrs"][step].get<double>(), 1e-12)
        << "step " << step + 1;
    EXPECT_NEAR(json["grad_norm"].get<double>(), reference["grad_norms"][step].get<double>(),
                1e-4)
        << "step " << step + 1;
    ++step;
  }
  EXPECT_EQ(step, 10u);
  // Past lr_decay_iters the rate is min_lr (step 10 is iteration 9).
  EXPECT_DOUBLE_EQ(reference["lrs"][9].get<double>(), 1e-4);

  const auto ours = weights::SafetensorsFile::open(dir.at("run/checkpoints/step-00000010/model.safetensors"));
  const auto theirs = weights::SafetensorsFile::open(dir.at("final.safetensors"));
  ASSERT_EQ(ours.tensors().size(), theirs.tensors().size());
  for (const auto& info : theirs.tensors()) {
    const at::Tensor a = ours.tensor(info.name), b = theirs.tensor(info.name);
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-4) << info.name;
  }
}

}  // namespace
}  // namespace blocks
