// The harness of the model benchmarks: a blocks model built from YAML and the same model written
// by hand, given the same weights (copy_weights refuses a mismatch), timed in the same run with
// the order alternating each iteration so that machine drift hits both alike; peak memory of
// each in a forked child of its own (wait4's per-child rusage), so neither sees the other's
// allocations.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace paired {

[[noreturn]] inline void fail(const std::string& program, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), message.c_str());
  std::exit(1);
}

// Copies into `to` each parameter of `from` that `names` (to's name -> from's name) gives;
// every parameter of both must be covered, with equal shapes, or the ratio would compare two
// different computations.
inline void copy_weights(const torch::nn::Module& from, torch::nn::Module& to,
                         const std::map<std::string, std::string>& names) {
  const auto source = from.named_parameters(/*recurse=*/true);
  auto target = to.named_parameters(/*recurse=*/true);
  if (names.size() != target.size() || source.size() != target.size())
    fail("copy_weights", "parameter counts differ: blocks " + std::to_string(source.size()) +
                             ", hand " + std::to_string(target.size()) + ", mapped " +
                             std::to_string(names.size()));
  torch::NoGradGuard no_grad;
  for (auto& item : target) {
    const auto name = names.find(item.key());
    const at::Tensor* src = name == names.end() ? nullptr : source.find(name->second);
    if (!src) fail("copy_weights", "no blocks parameter for " + item.key());
    if (src->sizes() != item.value().sizes())
      fail("copy_weights", item.key() + ": shape " + c10::str(item.value().sizes()) + " but " +
                               name->second + " is " + c10::str(src->sizes()));
    item.value().copy_(*src);
  }
}

inline int64_t parameter_count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// Wall-clock and process CPU time (all threads) of one call. Wall time is what a user waits;
// CPU time is less disturbed by other processes taking the cores, which on a shared 2-core
// box is most of the noise.
struct Timing {
  double wall = 0, cpu = 0;
};

inline double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

inline Timing timed(const at::Device& device, const std::function<void()>& work) {
  if (device.is_cuda()) torch::cuda::synchronize();
  const double cpu = cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  work();
  if (device.is_cuda()) torch::cuda::synchronize();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
          cpu_seconds() - cpu};
}

// The logits of one model on the benchmark's fixed inputs.
using Forward = std::function<at::Tensor()>;

// One training step: forward, cross entropy against `targets`, backward, then the gradients
// dropped (zero_grad(set_to_none=True)) so every step starts from the same memory state.
inline Timing train_step(const at::Device& device, const Forward& forward,
                         const std::vector<at::Tensor>& parameters, const at::Tensor& targets) {
  return timed(device, [&] {
    const at::Tensor logits = forward();
    const at::Tensor loss = at::nll_loss(
        logits.to(at::kFloat).log_softmax(-1).view({-1, logits.size(-1)}), targets.view(-1));
    loss.backward();
    for (const auto& p : parameters) p.mutable_grad() = at::Tensor();
  });
}

// ---- Peak memory, one child process per model ---------------------------------------------
struct Memory {
  double after_build_mb = 0, peak_mb = 0;
};

inline double current_rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

// Runs `variant` (build a model, then a few training steps; it returns the RSS once built) in a
// forked child. Called before the parent runs any parallel LibTorch op: GNU OpenMP's thread
// pool does not survive fork().
inline Memory measure_in_child(const std::function<double()>& variant) {
  int fds[2];
  if (pipe(fds) != 0) fail("measure_in_child", "pipe failed");
  const pid_t pid = fork();
  if (pid < 0) fail("measure_in_child", "fork failed");
  if (pid == 0) {
    close(fds[0]);
    double after_build = -1;
    try {
      after_build = variant();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "memory child: %s\n", e.what());
    }
    if (write(fds[1], &after_build, sizeof after_build) != sizeof after_build) _exit(2);
    _exit(after_build < 0 ? 1 : 0);
  }
  close(fds[1]);
  Memory m;
  if (read(fds[0], &m.after_build_mb, sizeof m.after_build_mb) != sizeof m.after_build_mb)
    m.after_build_mb = -1;
  close(fds[0]);
  int status = 0;
  struct rusage usage {};
  // wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the max over all children.
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("measure_in_child", "the memory child failed");
  m.peak_mb = usage.ru_maxrss / 1024.0;  // KiB on Linux
  return m;
}

// What a memory child trains: a model's forward (holding the model), its parameters, targets.
struct Training {
  Forward forward;
  std::vector<at::Tensor> parameters;
  at::Tensor targets;
};

// Peak memory of `build` (a model and its batch), then two training steps, in a child of its
// own; after_build_mb is the RSS once `build` returned.
inline Memory memory_of(const std::function<Training()>& build) {
  return measure_in_child([&] {
    const Training t = build();
    const double built = current_rss_mb();
    for (int i = 0; i < 2; ++i) train_step(at::kCPU, t.forward, t.parameters, t.targets);
    return built;
  });
}

// ---- Timing both models -------------------------------------------------------------------
inline double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Summary {
  std::string name;
  double yaml_ms = 0, hand_ms = 0, yaml_cpu_ms = 0, hand_cpu_ms = 0;
};

// One step of one model: true for the YAML model, false for the hand one.
using Step = std::function<Timing(bool yaml)>;

// Times both models each iteration, alternating which goes first, after one warm-up step each
// (allocator, thread pool, first-call paths); the benchmark's own time is their sum, the
// counters are what matters. Peak memory (when measured) joins the counters.
inline Summary run(benchmark::State& state, const std::string& name, const Step& step,
                   const Memory& yaml_memory, const Memory& hand_memory) {
  step(true);
  step(false);
  std::vector<double> yaml, hand, yaml_cpu, hand_cpu;
  auto one = [&](bool is_yaml) {
    const Timing t = step(is_yaml);
    (is_yaml ? yaml : hand).push_back(t.wall);
    (is_yaml ? yaml_cpu : hand_cpu).push_back(t.cpu);
  };
  bool yaml_first = true;
  for (auto _ : state) {
    one(yaml_first);
    one(!yaml_first);
    yaml_first = !yaml_first;
  }
  state.counters["yaml_ms"] = 1e3 * mean(yaml);
  state.counters["hand_ms"] = 1e3 * mean(hand);
  state.counters["ratio_mean"] = mean(yaml) / mean(hand);
  state.counters["ratio_median"] = median(yaml) / median(hand);
  state.counters["ratio_min"] =
      *std::min_element(yaml.begin(), yaml.end()) / *std::min_element(hand.begin(), hand.end());
  state.counters["ratio_cpu"] = mean(yaml_cpu) / mean(hand_cpu);
  if (yaml_memory.peak_mb > 0) {
    state.counters["peak_yaml_MiB"] = yaml_memory.peak_mb;
    state.counters["peak_hand_MiB"] = hand_memory.peak_mb;
    state.counters["peak_ratio"] = yaml_memory.peak_mb / hand_memory.peak_mb;
  }
  return {name, 1e3 * mean(yaml), 1e3 * mean(hand), 1e3 * mean(yaml_cpu), 1e3 * mean(hand_cpu)};
}

// ---- The program around them --------------------------------------------------------------
struct Options {
  at::Device device = at::kCPU;
  int64_t batch = 1, tokens = 256;
  int64_t iterations = 8;  // pairs (one step of each model) per benchmark
  bool memory = true;
};

// Reads and removes the harness's flags (--device=, --batch=, --tokens=, --iterations=,
// --no-memory) and those `extra` takes (it returns whether it took the argument), leaving
// Google Benchmark's.
inline void parse_flags(int& argc, char** argv, Options& options,
                        const std::function<bool(const std::string&)>& extra = {}) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& flag) -> const char* {
      return arg.compare(0, flag.size(), flag) == 0 ? argv[i] + flag.size() : nullptr;
    };
    if (const char* v = value("--device=")) {
      options.device = at::Device(v);
    } else if (const char* v = value("--batch=")) {
      options.batch = std::atol(v);
    } else if (const char* v = value("--tokens=")) {
      options.tokens = std::atol(v);
    } else if (const char* v = value("--iterations=")) {
      options.iterations = std::atol(v);
    } else if (arg == "--no-memory") {
      options.memory = false;
    } else if (!extra || !extra(arg)) {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
}

// What the benchmarks time: both models on the same fixed inputs.
struct Models {
  Forward yaml, hand;
  std::vector<at::Tensor> yaml_parameters, hand_parameters;
  at::Tensor targets;
};

// Registers a training step (BM_TrainStep) and a forward without autograd (BM_Forward, which
// isolates the module code from the backward pass) over `models` (made at the first run),
// runs them and prints the ratios. Peak memory is measured before: forking needs a process
// without CUDA or OpenMP threads yet, and on CPU only (RSS says nothing about GPU memory).
inline int run_benchmarks(int argc, char** argv, const std::string& program,
                          const Options& options, const std::function<Models&()>& models,
                          const std::function<void()>& measure_memory, const Memory& yaml_memory,
                          const Memory& hand_memory) {
  if (options.memory && options.device.is_cpu()) measure_memory();
  if (options.device.is_cuda() && !torch::cuda::is_available())
    fail(program, "CUDA is not available");
  static std::vector<Summary> summaries;
  auto train = [&](benchmark::State& state) {
    Models& m = models();
    summaries.push_back(run(
        state, "train step",
        [&](bool yaml) {
          return train_step(options.device, yaml ? m.yaml : m.hand,
                            yaml ? m.yaml_parameters : m.hand_parameters, m.targets);
        },
        yaml_memory, hand_memory));
  };
  auto forward = [&](benchmark::State& state) {
    Models& m = models();
    summaries.push_back(run(
        state, "forward (no grad)",
        [&](bool yaml) {
          torch::NoGradGuard no_grad;
          return timed(options.device, [&] { benchmark::DoNotOptimize(yaml ? m.yaml() : m.hand()); });
        },
        yaml_memory, hand_memory));
  };
  for (auto* b : {benchmark::RegisterBenchmark("BM_TrainStep", train),
                  benchmark::RegisterBenchmark("BM_Forward", forward)})
    b->Unit(benchmark::kMillisecond)->Iterations(options.iterations)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (const auto& s : summaries)
    std::printf("%s: yaml %.1f ms, hand %.1f ms, ratio yaml/hand %.3f (CPU time %.3f)\n",
                s.name.c_str(), s.yaml_ms, s.hand_ms, s.yaml_ms / s.hand_ms,
                s.yaml_cpu_ms / s.hand_cpu_ms);
  return 0;
}

}  // namespace paired
