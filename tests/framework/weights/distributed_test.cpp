// Distributed loading (framework/weights/distributed.h): 2 and 4 processes of blocks_load_check
// launched torchrun-style on one machine (Gloo over 127.0.0.1), both strategies, every rank's
// exact byte hash against a single-process load; strict mismatches and missing files failing on
// every rank with the same message; launcher environment errors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "framework/weights/distributed.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "tests/support/errors.h"
#include "tests/support/torch_support.h"
#include "tests/support/ports.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;
namespace w = weights;

const std::vector<std::string>& kSets = kSmallGpt2;
const std::string kConfig = BLOCKS_SOURCE_DIR "/configs/gpt2.yaml";
const std::string kTool = BLOCKS_BINARY_DIR "/blocks_load_check";


std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct RankResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs blocks_load_check once per rank with the torchrun variables (minus `drop`), waits for
// all (killing them after 120 s), and returns each rank's exit code, stdout and stderr.
std::vector<RankResult> launch(int world, const std::vector<std::string>& args,
                               const fs::path& dir, const std::string& drop = "") {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < world; ++rank) {
    const std::string out = (dir / ("rank" + std::to_string(rank) + ".out")).string();
    const std::string err = (dir / ("rank" + std::to_string(rank) + ".err")).string();
    std::vector<std::string> argv = {kTool, kConfig};
    for (const auto& s : kSets) argv.insert(argv.end(), {"--set", s});
    argv.insert(argv.end(), args.begin(), args.end());
    std::map<std::string, std::string> env = {{"RANK", std::to_string(rank)},
                                              {"LOCAL_RANK", std::to_string(rank)},
                                              {"WORLD_SIZE", std::to_string(world)},
                                              {"MASTER_ADDR", "127.0.0.1"},
                                              {"MASTER_PORT", std::to_string(port)}};
    env.erase(drop);
    const pid_t pid = fork();
    if (pid == 0) {
      const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      for (const char* name : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"})
        unsetenv(name);
      for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(kTool.c_str(), cargv.data());
      _exit(127);
    }
    pids.push_back(pid);
  }
  std::vector<RankResult> results(world);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (int rank = 0; rank < world; ++rank) {
    int status = 0;
    while (waitpid(pids[rank], &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        for (pid_t p : pids) kill(p, SIGKILL);
        waitpid(pids[rank], &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    results[rank].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    results[rank].out = slurp(dir / ("rank" + std::to_string(rank) + ".out"));
    results[rank].err = slurp(dir / ("rank" + std::to_string(rank) + ".err"));
  }
  return results;
}

std::string field(const std::string& line, const std::string& key) {
  std::smatch m;
  if (std::regex_search(line, m, std::regex(key + "=([^ \n]+)"))) return m[1];
  return "";
}

std::string hex(uint64_t h) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

Model small_model(std::vector<std::string> sets = kSets) {
  config::LoadOptions options;
  options.sets = std::move(sets);
  const config::Document doc = zoo("gpt2", options);
  return build_model(*doc.model);
}

std::vector<std::pair<std::string, at::Tensor>> targets_of(const Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : model.parameters) targets.emplace_back(p.name, p.tensor);
  return targets;
}

class DistributedLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!w::gloo_available()) {
      if (std::getenv("BLOCKS_REQUIRE_REFERENCES")) ADD_FAILURE() << "built without gloo in CI";
      GTEST_SKIP() << "built without the gloo headers (libgloo-dev)";
    }
  }
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/blocks_distributed_XXXXXX";
    dir_ = mkdtemp(pattern);
    Model model = small_model();
    nn::initialize(model.parameters, /*seed=*/11);
    w::write_safetensors((dir_ / "model.safetensors").string(), targets_of(model));
    // A checkpoint of another width: every rank must refuse it with the same report.
    auto other = kSets;
    other[3] = "model.decoder.block.mlp.intermediate_size=128";
    Model wrong = small_model(other);
    nn::initialize(wrong.parameters, /*seed=*/11);
    w::write_safetensors((dir_ / "wrong.safetensors").string(), targets_of(wrong));
    // The same models in Hugging Face GPT-2 names (Conv1D transposes, fused c_attn).
    w::write_safetensors((dir_ / "hf.safetensors").string(),
                         w::export_mapped(targets_of(model), w::hf_mapping("gpt2")));
    w::write_safetensors((dir_ / "hf_wrong.safetensors").string(),
                         w::export_mapped(targets_of(wrong), w::hf_mapping("gpt2")));
    // The single-process reference: load_safetensors into a fresh model.
    Model fresh = small_model();
    w::load_safetensors(targets_of(fresh), {(dir_ / "model.safetensors").string()});
    reference_ = hex(w::hash_tensors(targets_of(fresh)));
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  fs::path run_dir(const std::string& name) {
    const fs::path d = dir_ / name;
    fs::create_directories(d);
    return d;
  }

  void expect_identical(int world, const std::string& strategy) {
    const auto results =
        launch(world, {"--weights", (dir_ / "model.safetensors").string(), "--strategy", strategy},
               run_dir(strategy + std::to_string(world)));
    ASSERT_EQ(results.size(), static_cast<size_t>(world));
    for (int rank = 0; rank < world; ++rank) {
      SCOPED_TRACE("rank " + std::to_string(rank) + ": " + results[rank].out + results[rank].err);
      EXPECT_EQ(results[rank].exit_code, 0);
      EXPECT_EQ(field(results[rank].out, "rank"), std::to_string(rank));
      EXPECT_EQ(field(results[rank].out, "world"), std::to_string(world));
      EXPECT_EQ(field(results[rank].out, "strategy"), strategy);
      EXPECT_EQ(field(results[rank].out, "hash"), reference_);
    }
  }

  static inline fs::path dir_;
  static inline std::string reference_;
};

TEST_F(DistributedLoad, SingleProcessToolMatchesInProcessLoad) {
  const auto results =
      launch(1, {"--weights", (dir_ / "model.safetensors").string(), "--strategy", "single"},
             run_dir("single"));
  EXPECT_EQ(results[0].exit_code, 0) << results[0].err;
  EXPECT_EQ(field(results[0].out, "hash"), reference_);
}

TEST_F(DistributedLoad, MemEfficientTwoRanks) { expect_identical(2, "mem_efficient"); }
TEST_F(DistributedLoad, MemEfficientFourRanks) { expect_identical(4, "mem_efficient"); }
TEST_F(DistributedLoad, FreeForAllTwoRanks) { expect_identical(2, "free_for_all"); }
TEST_F(DistributedLoad, FreeForAllFourRanks) { expect_identical(4, "free_for_all"); }

// A Hugging Face checkpoint through the family's table: rank 0 applies the transforms (under
// mem_efficient) and every rank ends with the bytes of the blocks-named load.
TEST_F(DistributedLoad, HuggingFaceNamesLoadTheSameOnEveryRank) {
  const std::string file = (dir_ / "hf.safetensors").string();
  const auto single =
      launch(1, {"--weights", file, "--hf", "gpt2", "--strategy", "single"}, run_dir("hf_single"));
  ASSERT_EQ(single[0].exit_code, 0) << single[0].err;
  EXPECT_EQ(field(single[0].out, "hash"), reference_);
  for (const std::string strategy : {"mem_efficient", "free_for_all"}) {
    const auto results = launch(2, {"--weights", file, "--hf", "gpt2", "--strategy", strategy},
                                run_dir("hf_" + strategy));
    for (int rank = 0; rank < 2; ++rank) {
      SCOPED_TRACE(strategy + " rank " + std::to_string(rank) + ": " + results[rank].err);
      EXPECT_EQ(results[rank].exit_code, 0);
      EXPECT_EQ(field(results[rank].out, "hash"), reference_);
      EXPECT_EQ(field(results[rank].out, "tensors"), field(single[0].out, "tensors"));
    }
  }
  const auto wrong = launch(2,
                            {"--weights", (dir_ / "hf_wrong.safetensors").string(), "--hf",
                             "gpt2", "--strategy", "mem_efficient"},
                            run_dir("hf_wrong"));
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank) + ": " + wrong[rank].err);
    EXPECT_EQ(wrong[rank].exit_code, 1);
    EXPECT_NE(wrong[rank].err.find("the checkpoint does not fit the model (mapping gpt2)"),
              std::string::npos);
    EXPECT_NE(wrong[rank].err.find("decoder.0.mlp.up.weight (from transformer.h.0.mlp.c_fc."
                                   "weight): checkpoint [128, 64], model [256, 64]"),
              std::string::npos);
  }
}

// bfloat16 targets from a float32 checkpoint: rank 0 converts before broadcasting, and every
// rank ends with the bytes of a single-process conversion.
TEST_F(DistributedLoad, ConvertingDtypeMatchesSingleProcess) {
  const std::string file = (dir_ / "model.safetensors").string();
  const auto single = launch(1, {"--weights", file, "--strategy", "single", "--dtype", "bfloat16"},
                             run_dir("bf16_single"));
  ASSERT_EQ(single[0].exit_code, 0) << single[0].err;
  const std::string expected = field(single[0].out, "hash");
  EXPECT_NE(expected, reference_);
  for (const std::string strategy : {"mem_efficient", "free_for_all"}) {
    const auto results =
        launch(2, {"--weights", file, "--strategy", strategy, "--dtype", "bfloat16"},
               run_dir("bf16_" + strategy));
    for (int rank = 0; rank < 2; ++rank) {
      SCOPED_TRACE(strategy + " rank " + std::to_string(rank) + ": " + results[rank].err);
      EXPECT_EQ(results[rank].exit_code, 0);
      EXPECT_EQ(field(results[rank].out, "hash"), expected);
    }
  }
}

// Strips the "rank N: " prefix so the ranks' messages can be compared.
std::string message(const std::string& err) {
  return std::regex_replace(err, std::regex("^rank [0-9]+: "), "");
}

TEST_F(DistributedLoad, StrictMismatchFailsOnEveryRankWithTheSameReport) {
  for (const std::string strategy : {"mem_efficient", "free_for_all"}) {
    SCOPED_TRACE(strategy);
    const auto results =
        launch(3, {"--weights", (dir_ / "wrong.safetensors").string(), "--strategy", strategy},
               run_dir("wrong_" + strategy));
    for (int rank = 0; rank < 3; ++rank) {
      SCOPED_TRACE("rank " + std::to_string(rank) + ": " + results[rank].err);
      EXPECT_EQ(results[rank].exit_code, 1);
      EXPECT_EQ(results[rank].out, "");
      EXPECT_NE(results[rank].err.find("the checkpoint does not fit the model"),
                std::string::npos);
      EXPECT_NE(results[rank].err.find("shape mismatches"), std::string::npos);
      EXPECT_NE(results[rank].err.find("checkpoint [128, 64], model [256, 64]"),
                std::string::npos);
      EXPECT_EQ(message(results[rank].err), message(results[0].err));
    }
  }
}

TEST_F(DistributedLoad, MissingFileFailsOnEveryRankWithRankZerosMessage) {
  const auto results =
      launch(2, {"--weights", (dir_ / "absent.safetensors").string(), "--strategy",
                 "mem_efficient"},
             run_dir("absent"));
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank) + ": " + results[rank].err);
    EXPECT_EQ(results[rank].exit_code, 1);
    EXPECT_NE(results[rank].err.find((dir_ / "absent.safetensors").string() +
                                     ": cannot open: No such file or directory"),
              std::string::npos);
    EXPECT_EQ(message(results[rank].err), message(results[0].err));
  }
}

// The launcher users have: `torchrun --no-python` starts blocks_load_check on every rank with
// its variables. Debian 12's torchrun (torch 1.13 on Python 3.11) turns the default
// `--redirects 0` into None (Std.from_str iterates the IntFlag, and 3.11 leaves out its zero
// member) and crashes before starting anything; `--redirects 1 --tee 1` avoids it (stdout to a
// log file and the console, each line prefixed [defaultN]:).
TEST_F(DistributedLoad, TorchrunNoPythonLaunchesEveryRank) {
  const std::string torchrun = "/usr/bin/torchrun";
  if (!fs::exists(torchrun)) {
    if (std::getenv("BLOCKS_REQUIRE_REFERENCES")) ADD_FAILURE() << "no " << torchrun << " in CI";
    GTEST_SKIP() << "no " << torchrun << " (Debian's python3-torch)";
  }
  const fs::path dir = run_dir("torchrun");
  for (const std::string strategy : {"mem_efficient", "free_for_all"}) {
    std::string command = torchrun + " --nproc_per_node=2 --master_addr=127.0.0.1 --master_port=" +
                          std::to_string(free_port()) + " --redirects 1 --tee 1 --log_dir " +
                          (dir / strategy).string() + " --no_python " + kTool + " " + kConfig;
    for (const auto& set : kSets) command += " --set " + set;
    command += " --weights " + (dir_ / "model.safetensors").string() + " --strategy " + strategy +
               " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string out;
    char buffer[4096];
    while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    const int status = ::pclose(pipe);
    SCOPED_TRACE(strategy + ":\n" + out);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    for (int rank = 0; rank < 2; ++rank) {
      std::smatch line;
      const std::string prefix = "\\[default" + std::to_string(rank) + "\\]:";
      ASSERT_TRUE(std::regex_search(out, line, std::regex(prefix + "(rank=[^\n]*)")));
      EXPECT_EQ(field(line[1], "rank"), std::to_string(rank));
      EXPECT_EQ(field(line[1], "world"), "2");
      EXPECT_EQ(field(line[1], "strategy"), strategy);
      EXPECT_EQ(field(line[1], "hash"), reference_);
    }
  }
}

TEST_F(DistributedLoad, ToolRefusesTwoMappingsAndUnknownFamilies) {
  const std::string file = (dir_ / "hf.safetensors").string();
  auto results = launch(1, {"--weights", file, "--hf", "gpt2", "--map", "m.yaml", "--strategy",
                            "single"},
                        run_dir("two_maps"));
  EXPECT_EQ(results[0].exit_code, 2);
  EXPECT_NE(results[0].err.find("blocks_load_check: --hf and --map exclude each other"),
            std::string::npos)
      << results[0].err;
  results = launch(1, {"--weights", file, "--hf", "bert", "--strategy", "single"},
                   run_dir("bert"));
  EXPECT_EQ(results[0].exit_code, 2);
  EXPECT_NE(results[0].err.find("no built-in name mapping for model_type 'bert' (known: gemma, "
                                "gpt2, llama, mistral, mixtral, phi3, qwen2)"),
            std::string::npos)
      << results[0].err;
}

TEST_F(DistributedLoad, ToolWithoutRankIsAnEnvironmentError) {
  const auto results =
      launch(1, {"--weights", (dir_ / "model.safetensors").string(), "--strategy",
                 "mem_efficient"},
             run_dir("norank"), "RANK");
  EXPECT_EQ(results[0].exit_code, 2);
  EXPECT_NE(results[0].err.find("RANK is not set"), std::string::npos) << results[0].err;
}

TEST(ProcessGroupEnv, ParsesTorchrunVariables) {
  std::map<std::string, std::string> vars = {{"RANK", "3"},
                                             {"WORLD_SIZE", "4"},
                                             {"LOCAL_RANK", "1"},
                                             {"MASTER_ADDR", "node0"},
                                             {"MASTER_PORT", "29500"}};
  auto lookup = [&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  w::ProcessGroupEnv env = w::ProcessGroupEnv::parse(lookup);
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "node0");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_FALSE(env.agent_store);
  vars.erase("LOCAL_RANK");
  EXPECT_EQ(w::ProcessGroupEnv::parse(lookup).local_rank, 3);
  // Under torchrun the agent serves the store; ranks join it under the attempt's prefix.
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  vars["TORCHELASTIC_RESTART_COUNT"] = "2";
  env = w::ProcessGroupEnv::parse(lookup);
  EXPECT_TRUE(env.agent_store);
  EXPECT_EQ(env.restart_count, 2);
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "False";
  EXPECT_FALSE(w::ProcessGroupEnv::parse(lookup).agent_store);
}

std::string env_error(const std::map<std::string, std::string>& vars) {
  try {
    w::ProcessGroupEnv::parse([&](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    });
  } catch (const w::ProcessGroupEnvError& e) {
    return e.what();
  }
  return "";
}

TEST(ProcessGroupEnv, ListsEveryMissingOrInvalidVariable) {
  const std::string all_missing = env_error({});
  for (const char* text : {"RANK is not set", "WORLD_SIZE is not set", "MASTER_ADDR is not set",
                           "MASTER_PORT is not set"})
    EXPECT_NE(all_missing.find(text), std::string::npos) << all_missing;
  EXPECT_EQ(all_missing.find("LOCAL_RANK"), std::string::npos) << all_missing;

  const std::string bad = env_error({{"RANK", "one"},
                                     {"WORLD_SIZE", "0"},
                                     {"MASTER_ADDR", "127.0.0.1"},
                                     {"MASTER_PORT", "70000"}});
  EXPECT_NE(bad.find("RANK='one' is not an integer"), std::string::npos) << bad;
  EXPECT_NE(bad.find("WORLD_SIZE='0' is not an integer in [1,"), std::string::npos) << bad;
  EXPECT_NE(bad.find("MASTER_PORT='70000'"), std::string::npos) << bad;

  const std::string high = env_error({{"RANK", "2"},
                                      {"WORLD_SIZE", "2"},
                                      {"MASTER_ADDR", "127.0.0.1"},
                                      {"MASTER_PORT", "29500"}});
  EXPECT_NE(high.find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos) << high;

  // torchrun's agent store needs the attempt number for its key prefix.
  EXPECT_EQ(env_error({{"RANK", "0"},
                       {"WORLD_SIZE", "2"},
                       {"MASTER_ADDR", "127.0.0.1"},
                       {"MASTER_PORT", "29500"},
                       {"TORCHELASTIC_USE_AGENT_STORE", "True"}}),
            "the launcher environment (as torchrun sets it) is incomplete:\n"
            "  TORCHELASTIC_RESTART_COUNT is not set");
}

TEST(LoadStrategy, ParsesNames) {
  EXPECT_EQ(w::parse_load_strategy("mem_efficient"), w::LoadStrategy::mem_efficient);
  EXPECT_EQ(w::parse_load_strategy("free_for_all"), w::LoadStrategy::free_for_all);
  EXPECT_EQ(message_of<w::DistributedError>([] { w::parse_load_strategy("fast"); }),
            "unknown load strategy 'fast' (mem_efficient, free_for_all)");
}

}  // namespace
}  // namespace blocks::testing
