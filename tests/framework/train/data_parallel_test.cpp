// Data parallelism (framework/train/data_parallel.h): ranks of this test program launched
// torchrun-style on one machine (Gloo over 127.0.0.1). Broadcast to rank 0's bytes and refusing
// a different model; exact gradient averages over several buckets of float32, bfloat16 and
// float64; a parameter without gradient on one rank and a dead or stalled rank failing every
// live rank with a message, never hanging; 2 ranks of B rows training like 1 rank of 2B rows.
#include "framework/train/data_parallel.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/optim.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "framework/weights/distributed.h"
#include "framework/weights/safetensors.h"
#include "tests/support/torch_support.h"
#include "tests/support/ports.h"

extern char** environ;

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;
namespace w = weights;
using train::DataParallel;
using train::DistributedError;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

// ---------------------------------------------------------------------------------------------
// One rank: this program started again with BLOCKS_DP_SCENARIO and the torchrun variables. It
// runs the scenario before GoogleTest's main (see kWorker) and exits: 0 when it passed, 1 on a
// DistributedError (message on stderr), 2 on anything else, 3 when a check failed. A fresh
// process rather than fork() alone: a forked child of a process that ran OpenMP can hang.

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value ? value : fallback;
}

struct Rank {
  w::ProcessGroupEnv env;
  fs::path dir;  // for files a scenario leaves for the test
  std::chrono::milliseconds timeout;
  c10::intrusive_ptr<c10d::ProcessGroup> group() const {
    return w::init_process_group(env, w::Backend::gloo, timeout);
  }
};

// Parameters seeded by `seed`: float32, bfloat16 and float64, one of them non-contiguous.
Named parameters(uint64_t seed) {
  at::manual_seed(seed);
  return {{"a.weight", at::randn({4, 3})},
          {"a.bias", at::randn({4})},
          {"b", at::randn({5, 2}).to(at::kBFloat16)},
          {"c", at::randn({3, 2}).t()},
          {"d", at::randn({7}, at::kDouble)}};
}

std::string hex(uint64_t h) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

int broadcast(const Rank& r) {
  Named params = parameters(/*seed=*/100 + r.env.rank);
  std::printf("before=%s\n", hex(w::hash_tensors(params)).c_str());
  DataParallel dp(r.group(), params);
  dp.broadcast_parameters();
  std::printf("after=%s\n", hex(w::hash_tensors(params)).c_str());
  return 0;
}

int broadcast_other_shape(const Rank& r) {
  Named params = parameters(1);
  if (r.env.rank == 1) params[2].second = at::zeros({5, 3}, at::kBFloat16);
  DataParallel(r.group(), params).broadcast_parameters();
  return 0;
}

int broadcast_extra_parameter(const Rank& r) {
  Named params = parameters(1);
  if (r.env.rank == 1) params.emplace_back("extra", at::zeros({3}));
  DataParallel(r.group(), params).broadcast_parameters();
  return 0;
}

// Rank `rank`'s gradient of parameter `i` at `step`: random, reproducible on every rank.
at::Tensor gradient(const at::Tensor& p, int rank, size_t i, int step) {
  at::manual_seed(1000 * step + 10 * rank + i);
  return at::randn(p.sizes(), at::kDouble).to(p.scalar_type());
}

// Every rank's average, computed the way a float32 wire computes it: summed in the wire dtype
// (float32 for bfloat16), divided there, rounded once into the gradient's dtype.
at::Tensor expected_average(const at::Tensor& p, int world, size_t i, int step) {
  const at::ScalarType wire = p.scalar_type() == at::kBFloat16 ? at::kFloat : p.scalar_type();
  at::Tensor sum = at::zeros(p.sizes(), wire);
  for (int rank = 0; rank < world; ++rank) sum += gradient(p, rank, i, step).to(wire);
  return (sum / world).to(p.scalar_type());
}

int reduce(const Rank& r) {
  const int world = r.env.world_size;
  auto group = r.group();
  int failures = 0;
  for (const int64_t bucket_bytes : {int64_t{40}, int64_t{25} << 20}) {
    Named params = parameters(1);
    for (auto& [name, t] : params) t.requires_grad_(true);
    DataParallel dp(group, params, bucket_bytes);
    std::printf("buckets_%lld=%zu\n", static_cast<long long>(bucket_bytes), dp.num_buckets());
    std::printf("describe_%lld=%s\n", static_cast<long long>(bucket_bytes), dp.describe().c_str());
    for (int step = 0; step < 2; ++step) {  // twice: the buffers are reused
      for (size_t i = 0; i < params.size(); ++i)
        params[i].second.mutable_grad() = gradient(params[i].second, r.env.rank, i, step);
      dp.reduce_gradients();
      for (size_t i = 0; i < params.size(); ++i)
        if (!at::equal(params[i].second.grad(),
                       expected_average(params[i].second, world, i, step))) {
          std::printf("mismatch=%s step %d\n", params[i].first.c_str(), step);
          ++failures;
        }
    }
  }
  DataParallel dp(group, {});
  std::printf("average=%.17g sum=%lld\n", dp.average(r.env.rank + 1.0),
              static_cast<long long>(dp.sum(r.env.rank + 1)));
  return failures ? 3 : 0;
}

// First `b` lacks its gradient on rank 1 only; then 12 of 13 parameters lack one everywhere.
// Each time both ranks throw the same error, and the group stays usable for the next call.
int missing_gradient(const Rank& r) {
  auto group = r.group();
  Named params = parameters(1);
  for (size_t i = 0; i < params.size(); ++i)
    if (!(r.env.rank == 1 && params[i].first == "b"))
      params[i].second.mutable_grad() = at::ones_like(params[i].second);
  try {
    DataParallel(group, params).reduce_gradients();
    std::printf("first=no error\n");
  } catch (const DistributedError& e) {
    std::printf("first=%s\n", e.what());
  }
  Named many;
  for (int i = 0; i < 13; ++i) many.emplace_back("p" + std::to_string(i), at::zeros({2}));
  many[5].second.mutable_grad() = at::zeros({2});
  try {
    DataParallel(group, many).reduce_gradients();
    std::printf("second=no error\n");
  } catch (const DistributedError& e) {
    std::printf("second=%s\n", e.what());
  }
  return 0;
}

// Rank `lost` dies (SIGKILL, like the OOM killer) or stops calling collectives before a reduce;
// the other must fail within the timeout, and returns normally (the group's destructor
// included). Rank 0 is also the one serving the TCPStore.
int peer_lost(const Rank& r, int lost, bool dies) {
  Named params = parameters(1);
  for (auto& [name, t] : params) t.mutable_grad() = at::ones_like(t);
  DataParallel dp(r.group(), params, int64_t{25} << 20, r.timeout);
  dp.sum(0);  // both ranks are past the rendezvous
  if (r.env.rank == lost) {
    if (dies) ::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::seconds(8));
    return 0;
  }
  const auto start = std::chrono::steady_clock::now();
  try {
    dp.reduce_gradients();
  } catch (const DistributedError& e) {
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::printf("elapsed=%.3f\n", elapsed.count());
    throw;
  }
  return 0;
}

// ---- equivalence: a blocks model trained on W ranks of B rows, or 1 rank of W * B rows -------

constexpr int kRows = 4;  // the global batch
constexpr int kTokens = 12;
constexpr int kSteps = 3;

at::Tensor batch(int step) {
  at::manual_seed(500 + step);
  return at::randint(0, 100, {kRows, kTokens}, at::kLong);
}

// The mean next-token cross-entropy over `tokens`' rows.
at::Tensor loss_of(Model& model, const at::Tensor& tokens) {
  const at::Tensor logits = model.module->forward(tokens).logits;
  const int64_t vocab = logits.size(-1);
  return at::cross_entropy_loss(logits.narrow(1, 0, kTokens - 1).reshape({-1, vocab}),
                                tokens.narrow(1, 1, kTokens - 1).reshape({-1}));
}

// Each rank starts from its own random initialization (broadcast_parameters makes them rank
// 0's), takes its rows of every batch in `micro` micro-batches (loss / micro each), and writes
// its final parameters to dir/rankR.safetensors. One rank (the reference) takes the whole batch
// at once.
int train(const Rank& r, const std::string& optimizer, int micro, at::ScalarType dtype) {
  const int world = r.env.world_size, rank = r.env.rank;
  if (world == 1) micro = 1;
  Model model = build_text(ModelText{}.text(), dtype, /*seed=*/1 + 100 * rank);
  Named params;
  std::vector<at::Tensor> tensors;
  for (const auto& p : model.parameters) {
    params.emplace_back(p.name, p.tensor);
    tensors.push_back(p.tensor);
  }
  DataParallel dp(r.group(), params);
  dp.broadcast_parameters();
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (optimizer == "sgd")
    opt = std::make_unique<torch::optim::SGD>(tensors, torch::optim::SGDOptions(0.1));
  else
    opt = std::make_unique<torch::optim::AdamW>(tensors,
                                                torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
  const int rows = kRows / world / micro;
  for (int step = 0; step < kSteps; ++step) {
    opt->zero_grad();
    const at::Tensor tokens = batch(step);
    double loss = 0;
    for (int m = 0; m < micro; ++m) {
      const at::Tensor rows_of_micro = tokens.narrow(0, int64_t{rank * micro + m} * rows, rows);
      const at::Tensor l = loss_of(model, rows_of_micro) / micro;
      l.backward();
      loss += l.item<double>();
    }
    dp.reduce_gradients();
    opt->step();
    std::printf("loss%d=%.17g\n", step, dp.average(loss));
  }
  w::write_safetensors((r.dir / ("rank" + std::to_string(rank) + ".safetensors")).string(), params);
  return 0;
}

const std::map<std::string, std::function<int(const Rank&)>>& scenarios() {
  static const std::map<std::string, std::function<int(const Rank&)>> table = {
      {"broadcast", broadcast},
      {"broadcast_other_shape", broadcast_other_shape},
      {"broadcast_extra_parameter", broadcast_extra_parameter},
      {"reduce", reduce},
      {"missing_gradient", missing_gradient},
      {"rank1_dies", [](const Rank& r) { return peer_lost(r, 1, true); }},
      {"rank0_dies", [](const Rank& r) { return peer_lost(r, 0, true); }},
      {"rank1_stalls", [](const Rank& r) { return peer_lost(r, 1, false); }},
      {"train_sgd", [](const Rank& r) { return train(r, "sgd", 1, at::kFloat); }},
      {"train_sgd_micro", [](const Rank& r) { return train(r, "sgd", 2, at::kFloat); }},
      {"train_adamw", [](const Rank& r) { return train(r, "adamw", 1, at::kFloat); }},
      {"train_adamw_float64", [](const Rank& r) { return train(r, "adamw", 1, at::kDouble); }},
      {"train_adamw_float64_micro",
       [](const Rank& r) { return train(r, "adamw", 2, at::kDouble); }},
  };
  return table;
}

int run_worker(const std::string& name) {
  int code = 2;
  try {
    Rank r;
    r.env = w::ProcessGroupEnv::from_env();
    r.dir = env_or("BLOCKS_DP_DIR", ".");
    r.timeout = std::chrono::milliseconds(std::stoll(env_or("BLOCKS_DP_TIMEOUT_MS", "20000")));
    code = scenarios().at(name)(r);
  } catch (const DistributedError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    code = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected error: %s\n", e.what());
    code = 2;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  return code;
}

// Before main: a rank runs its scenario and exits here (destructors of its own objects ran when
// the scenario returned; exit() then runs the static ones, as a trainer's exit does).
[[maybe_unused]] const bool kWorker = [] {
  if (const char* name = std::getenv("BLOCKS_DP_SCENARIO")) std::exit(run_worker(name));
  return false;
}();

// ---------------------------------------------------------------------------------------------
// The test side: launching ranks and reading what they left.


std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct RankResult {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;
  double seconds = 0;  // from launch to exit
  std::string out, err;
};

// The value of `key=` on its own line of `out`.
std::string field(const std::string& out, const std::string& key) {
  std::smatch m;
  if (std::regex_search(out, m, std::regex("(^|\n)" + key + "=([^\n]*)"))) return m[2];
  return "<no " + key + ">";
}

class DataParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!w::gloo_available()) {
      if (std::getenv("BLOCKS_REQUIRE_REFERENCES")) ADD_FAILURE() << "built without gloo in CI";
      GTEST_SKIP() << "built without the gloo headers (libgloo-dev)";
    }
    char pattern[] = "/tmp/blocks_data_parallel_XXXXXX";
    dir_ = mkdtemp(pattern);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Starts `world` ranks of `scenario` and waits for all; after `watchdog` every rank still
  // running is killed and the test fails (a hang is a failure, not a stuck CTest).
  std::vector<RankResult> launch(int world, const std::string& scenario,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(20),
                                 std::chrono::seconds watchdog = std::chrono::seconds(90)) {
    const fs::path dir = dir_ / (scenario + std::to_string(world));
    fs::create_directories(dir);
    const std::map<std::string, std::string> common = {
        {"BLOCKS_DP_SCENARIO", scenario},
        {"BLOCKS_DP_DIR", dir.string()},
        {"BLOCKS_DP_TIMEOUT_MS", std::to_string(timeout.count())},
        {"WORLD_SIZE", std::to_string(world)},
        {"MASTER_ADDR", "127.0.0.1"},
        {"MASTER_PORT", std::to_string(free_port())}};
    const auto start = std::chrono::steady_clock::now();
    std::vector<pid_t> pids;
    for (int rank = 0; rank < world; ++rank) {
      std::map<std::string, std::string> vars = common;
      vars["RANK"] = vars["LOCAL_RANK"] = std::to_string(rank);
      // The environment is built before fork(): the child only redirects and execs.
      std::vector<std::string> entries;
      for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        if (!vars.count(entry.substr(0, entry.find('=')))) entries.push_back(entry);
      }
      for (const auto& [k, v] : vars) entries.push_back(k + "=" + v);
      std::vector<char*> envp;
      for (auto& e : entries) envp.push_back(e.data());
      envp.push_back(nullptr);
      const std::string out = (dir / ("rank" + std::to_string(rank) + ".out")).string();
      const std::string err = (dir / ("rank" + std::to_string(rank) + ".err")).string();
      char self[] = "/proc/self/exe";
      char* argv[] = {self, nullptr};
      const pid_t pid = fork();
      if (pid == 0) {
        dup2(open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
        dup2(open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
        execve(self, argv, envp.data());
        _exit(127);
      }
      pids.push_back(pid);
    }
    std::vector<RankResult> results(world);
    std::vector<bool> done(world, false);
    for (int left = world; left > 0;) {
      for (int rank = 0; rank < world; ++rank) {
        int status = 0;
        if (done[rank] || waitpid(pids[rank], &status, WNOHANG) == 0) continue;
        done[rank] = true;
        --left;
        RankResult& r = results[rank];
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      }
      if (left > 0 && std::chrono::steady_clock::now() - start > watchdog) {
        ADD_FAILURE() << scenario << ": ranks still running after " << watchdog.count()
                      << " s (a hang); killed";
        for (int rank = 0; rank < world; ++rank)
          if (!done[rank]) kill(pids[rank], SIGKILL);
        watchdog = std::chrono::seconds(1 << 20);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (int rank = 0; rank < world; ++rank) {
      results[rank].out = slurp(dir / ("rank" + std::to_string(rank) + ".out"));
      results[rank].err = slurp(dir / ("rank" + std::to_string(rank) + ".err"));
    }
    return results;
  }

  static std::string trace(const std::vector<RankResult>& results) {
    std::string text;
    for (size_t r = 0; r < results.size(); ++r)
      text += "rank " + std::to_string(r) + " (exit " + std::to_string(results[r].exit_code) +
              "):\n" + results[r].out + results[r].err;
    return text;
  }

  fs::path dir_;
};

TEST_F(DataParallelTest, BroadcastGivesEveryRankRankZerosBytes) {
  const auto results = launch(2, "broadcast");
  SCOPED_TRACE(trace(results));
  const std::string rank0 = field(results[0].out, "before");
  EXPECT_NE(field(results[1].out, "before"), rank0);  // they started different
  for (const auto& r : results) {
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(field(r.out, "after"), rank0);
  }
}

TEST_F(DataParallelTest, BroadcastRefusesADifferentShapeOnEveryRank) {
  const auto results = launch(2, "broadcast_other_shape");
  SCOPED_TRACE(trace(results));
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(results[rank].exit_code, 1);
    EXPECT_EQ(results[rank].err,
              "rank " + std::to_string(rank) +
                  ": broadcast_parameters: rank 1's parameters differ from rank 0's (a different "
                  "model or config on some rank?): parameter 2: rank 0 has b [5, 2] bfloat16, "
                  "rank 1 has b [5, 3] bfloat16\n");
  }
}

TEST_F(DataParallelTest, BroadcastRefusesAnExtraParameterOnEveryRank) {
  const auto results = launch(2, "broadcast_extra_parameter");
  SCOPED_TRACE(trace(results));
  for (const auto& r : results) {
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("parameter 5: rank 0 has no parameter there, rank 1 has extra [3] "
                         "float32 (rank 0 has 5 parameters, rank 1 has 6)"),
              std::string::npos);
  }
}

// Exact: for two ranks, a float32 sum and a division by 2 are the exact average rounded once.
TEST_F(DataParallelTest, ReduceGivesTheExactAverageInEveryBucket) {
  for (const int world : {1, 2}) {
    const auto results = launch(world, "reduce");
    SCOPED_TRACE(trace(results));
    for (const auto& r : results) {
      EXPECT_EQ(r.exit_code, 0);
      EXPECT_EQ(r.out.find("mismatch"), std::string::npos);
      // 40 bytes: a.weight (48 B) | a.bias (16 B), c (24 B) | b (as float32) | d (56 B).
      EXPECT_EQ(field(r.out, "buckets_40"), "4");
      EXPECT_EQ(field(r.out, "buckets_26214400"), "3");
      EXPECT_EQ(field(r.out, "describe_26214400"),
                std::to_string(world) + (world == 1 ? " rank" : " ranks") +
                    ", 5 parameters in 3 buckets: 3 float32 of 88 bytes, 1 bfloat16 (as float32) "
                    "of 40 bytes, 1 float64 of 56 bytes");
      EXPECT_EQ(field(r.out, "average"), world == 1 ? "1 sum=1" : "1.5 sum=3");
    }
  }
}

TEST_F(DataParallelTest, AMissingGradientFailsEveryRankNamingIt) {
  const auto results = launch(2, "missing_gradient", std::chrono::seconds(20),
                              /*watchdog=*/std::chrono::seconds(60));
  SCOPED_TRACE(trace(results));
  for (int rank = 0; rank < 2; ++rank) {
    const auto& r = results[rank];
    EXPECT_EQ(r.exit_code, 0);
    const std::string prefix = "rank " + std::to_string(rank) + ": reduce_gradients: ";
    EXPECT_EQ(field(r.out, "first"),
              prefix +
                  "1 of 5 parameters have no gradient: b (on rank 1). Every parameter given to "
                  "DataParallel needs a gradient on every rank at every step: leave frozen or "
                  "unused parameters out of its list, or give them a part in every rank's loss");
    // Ten named, p5 (which has its gradient) left out, then a count.
    std::string listed;
    for (int i : {0, 1, 2, 3, 4, 6, 7, 8, 9, 10})
      listed += "p" + std::to_string(i) + " (on every rank), ";
    EXPECT_EQ(field(r.out, "second").substr(0, field(r.out, "second").find(". Every")),
              prefix + "12 of 13 parameters have no gradient: " + listed + "and 2 more");
  }
}

// A dead peer's connections close, so the survivor fails at once rather than at the timeout.
TEST_F(DataParallelTest, ADeadRankFailsTheOthersWithinTheTimeout) {
  for (const int lost : {1, 0}) {
    const int survivor = 1 - lost;
    const auto results =
        launch(2, "rank" + std::to_string(lost) + "_dies", std::chrono::seconds(3));
    SCOPED_TRACE(trace(results));
    EXPECT_EQ(results[lost].signal, SIGKILL);
    EXPECT_EQ(results[survivor].exit_code, 1);
    EXPECT_LT(std::stod(field(results[survivor].out, "elapsed")), 3.5);
    EXPECT_EQ(results[survivor].err.rfind(
                  "rank " + std::to_string(survivor) +
                      ": reduce_gradients (checking which parameters have gradients): a "
                      "collective failed: a peer process may have died (LibTorch: ",
                  0),
              0u);
  }
}

TEST_F(DataParallelTest, AStalledRankFailsTheOthersWithinTheTimeout) {
  const auto results = launch(2, "rank1_stalls", std::chrono::seconds(3));
  SCOPED_TRACE(trace(results));
  EXPECT_EQ(results[0].exit_code, 1);
  const double elapsed = std::stod(field(results[0].out, "elapsed"));
  EXPECT_GT(elapsed, 2.9);
  EXPECT_LT(elapsed, 4.5);
  EXPECT_LT(results[0].seconds, results[1].seconds - 2)
      << "rank 0 exits (its group's destructor included) before its peer wakes";
  EXPECT_EQ(results[0].err.rfind("rank 0: reduce_gradients (checking which parameters have "
                                 "gradients): a collective did not complete within 3 s: a peer "
                                 "process may have died, hung or skipped it (LibTorch: ",
                                 0),
            0u);
}

// 2 ranks of 2 rows (or of 2 micro-batches of 1 row) against 1 rank of the 4 rows, 3 steps, with
// the loss a mean over each rank's rows. Not bit-exact: the reference sums each gradient over
// 4 rows in one reduction, the ranks over their 2 rows and then across ranks, and float addition
// is not associative (a few ulp apart, ~1e-7 relative in float32). SGD carries that difference
// into the weights as it is (1e-6 holds); Adam divides each gradient by its own running
// magnitude, so for elements whose gradient is near zero (its rounding noise comparable to
// itself) the update, about lr * sign(g), differs by a fair part of lr: float32 AdamW is
// compared at 1e-4 (lr 1e-2), and float64 AdamW, where rounding is 1e-16, at 1e-12.
TEST_F(DataParallelTest, TwoRanksTrainLikeOneRankOfTheWholeBatch) {
  const std::vector<std::pair<std::string, double>> cases = {{"train_sgd", 1e-6},
                                                             {"train_sgd_micro", 1e-6},
                                                             {"train_adamw", 1e-4},
                                                             {"train_adamw_float64", 1e-12},
                                                             {"train_adamw_float64_micro", 1e-12}};
  for (const auto& [scenario_name, tolerance] : cases) {
    const std::string scenario = scenario_name;  // a plain variable: lambdas capture it
    SCOPED_TRACE(scenario);
    const auto single = launch(1, scenario);
    ASSERT_EQ(single[0].exit_code, 0) << trace(single);
    const auto results = launch(2, scenario);
    ASSERT_EQ(results[0].exit_code, 0) << trace(results);
    ASSERT_EQ(results[1].exit_code, 0) << trace(results);
    auto load = [&](int world, int rank) {
      return w::SafetensorsFile::open((dir_ / (scenario + std::to_string(world)) /
                                       ("rank" + std::to_string(rank) + ".safetensors"))
                                          .string());
    };
    auto reference = load(1, 0), rank0 = load(2, 0), rank1 = load(2, 1);
    double worst = 0;
    for (const auto& info : reference.tensors()) {
      SCOPED_TRACE(info.name);
      const at::Tensor expected = reference.tensor(info.name);
      EXPECT_TRUE(close(rank0.tensor(info.name), expected, /*rtol=*/0, /*atol=*/tolerance));
      worst = std::max(worst, (rank0.tensor(info.name).to(at::kDouble) - expected.to(at::kDouble))
                                  .abs()
                                  .max()
                                  .item<double>());
      // The ranks apply the same averaged gradient to the same weights: identical bytes.
      EXPECT_TRUE(at::equal(rank0.tensor(info.name), rank1.tensor(info.name)));
    }
    std::printf("%s: max |weight difference| from 1 rank = %.3g\n", scenario.c_str(), worst);
    for (int step = 0; step < kSteps; ++step) {
      const std::string key = "loss" + std::to_string(step);
      EXPECT_NEAR(std::stod(field(results[0].out, key)), std::stod(field(single[0].out, key)),
                  tolerance);
    }
  }
}

}  // namespace
}  // namespace blocks::testing
