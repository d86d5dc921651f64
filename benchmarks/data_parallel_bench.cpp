// DataParallel::reduce_gradients (framework/train/data_parallel.h) on gradients shaped like
// GPT-2 small's (configs/gpt2.yaml, 124M float32 parameters, built on the meta device for their
// shapes), over Gloo ranks on 127.0.0.1 of this machine, for a few bucket sizes. The program
// launches its own ranks (itself again, with the torchrun variables) and prints rank 0's
// figures: median seconds per reduce and the algorithmic bandwidth (gradient bytes / time), and
// one plain all-reduce of the same bytes in one tensor (the floor bucketing is measured against).
//   ./build/benchmarks/data_parallel_bench [--ranks=2] [--runs=5]
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "blocks/models/model_module.h"
#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/train/data_parallel.h"
#include "framework/weights/distributed.h"
#include "tests/support/ports.h"

extern char** environ;

namespace {

namespace w = blocks::weights;

int worker(int runs) {
  const w::ProcessGroupEnv env = w::ProcessGroupEnv::from_env();
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::config::load_document(BLOCKS_SOURCE_DIR "/configs/gpt2.yaml",
                                           blocks::registry(), diagnostics);
  if (!doc) {
    std::fprintf(stderr, "%s\n", diagnostics.format().c_str());
    return 2;
  }
  const blocks::Model meta =
      blocks::build_model(*doc->model, at::TensorOptions().device(at::kMeta));
  std::vector<std::pair<std::string, at::Tensor>> parameters;
  double numel = 0;  // elements, for the figures
  for (const auto& p : meta.parameters) {
    at::Tensor t = at::zeros(p.shape);
    at::manual_seed(env.rank);
    t.mutable_grad() = at::randn(p.shape);
    parameters.emplace_back(p.name, t);
    numel += static_cast<double>(t.numel());
  }
  auto group = w::init_process_group(env, w::Backend::gloo, std::chrono::minutes(2));
  if (env.rank == 0)
    std::printf("%zu gradients, %.1fM float32 (%.0f MB), %d Gloo ranks on %ld cores\n",
                parameters.size(), numel / 1e6, numel * 4 / 1e6, env.world_size,
                static_cast<long>(sysconf(_SC_NPROCESSORS_ONLN)));
  for (const int64_t mib : {1, 25, 100}) {
    blocks::train::DataParallel dp(group, parameters, mib << 20, std::chrono::minutes(2));
    std::vector<double> seconds;
    for (int run = 0; run <= runs; ++run) {  // run 0 allocates the buckets: not counted
      dp.sum(0);                             // start together
      const auto start = std::chrono::steady_clock::now();
      dp.reduce_gradients();
      const std::chrono::duration<double> s = std::chrono::steady_clock::now() - start;
      if (run > 0) seconds.push_back(s.count());
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    if (env.rank == 0)
      std::printf(
          "bucket %3lld MiB (%3zu buckets): reduce_gradients %.3f s median (min %.3f, "
          "max %.3f), %.2f GB/s of gradients\n",
          static_cast<long long>(mib), dp.num_buckets(), median, seconds.front(), seconds.back(),
          numel * 4 / median / 1e9);
  }
  // The floor: one all-reduce of one contiguous tensor of the same size, no packing.
  at::Tensor flat = at::randn({static_cast<int64_t>(numel)});
  std::vector<double> seconds;
  for (int run = 0; run <= runs; ++run) {
    std::vector<at::Tensor> tensors{flat};
    const auto start = std::chrono::steady_clock::now();
    group->allreduce(tensors)->wait();
    const std::chrono::duration<double> s = std::chrono::steady_clock::now() - start;
    if (run > 0) seconds.push_back(s.count());
  }
  std::sort(seconds.begin(), seconds.end());
  if (env.rank == 0)
    std::printf("one c10d all-reduce of all %.0f MB at once (no buckets): %.3f s median\n",
                numel * 4 / 1e6, seconds[seconds.size() / 2]);
  return 0;
}


// Starts `ranks` copies of this program with the torchrun variables; rank 0 prints.
int launch(int ranks, const char* self, const std::vector<std::string>& args) {
  const std::string port = std::to_string(blocks::testing::free_port());
  std::vector<pid_t> pids;
  for (int rank = 0; rank < ranks; ++rank) {
    std::vector<std::string> entries = {"RANK=" + std::to_string(rank),
                                        "WORLD_SIZE=" + std::to_string(ranks),
                                        "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port};
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "RANK=", 5) != 0 && std::strncmp(*e, "WORLD_SIZE=", 11) != 0 &&
          std::strncmp(*e, "MASTER_", 7) != 0)
        entries.push_back(*e);
    std::vector<char*> envp, argv = {const_cast<char*>(self)};
    for (auto& e : entries) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> copies = args;
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      execve("/proc/self/exe", argv.data(), envp.data());
      _exit(127);
    }
    pids.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  int ranks = 2, runs = 5;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    args.emplace_back(argv[i]);
    if (std::strncmp(argv[i], "--ranks=", 8) == 0)
      ranks = std::atoi(argv[i] + 8);
    else if (std::strncmp(argv[i], "--runs=", 7) == 0)
      runs = std::atoi(argv[i] + 7);
    else {
      std::fprintf(stderr, "usage: %s [--ranks=2] [--runs=5]\n", argv[0]);
      return 2;
    }
  }
  try {
    if (std::getenv("RANK")) return worker(std::max(runs, 1));
    return launch(ranks, argv[0], args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "data_parallel_bench: %s\n", e.what());
    return 1;
  }
}
