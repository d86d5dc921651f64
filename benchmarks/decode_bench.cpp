// Incremental decoding with the KV cache (DecodeCache): greedy generation after prompts of 64
// and 1024 tokens, against recomputing the whole prefix per token without a cache.
//   ./build/benchmarks/decode_bench --benchmark_counters_tabular=true
//   steadier on a busy machine (one BLAS thread, repetitions interleaved at random):
//   OPENBLAS_NUM_THREADS=1 ./build/benchmarks/decode_bench --benchmark_repetitions=4
//       --benchmark_enable_random_interleaving=true
//
// The model is a 58M-parameter Llama-style config (hidden 512, 8 layers, GQA 8 heads / 4
// groups, vocab 32000) built from YAML, batch 1, float32, no autograd. Per generated token the
// weights cost the same at every prompt length (reading their 233 MB bounds it on CPU); what
// grows with the prompt is attention over the cached keys, so BM_AttentionOnly times that part
// (cache append, mask, fused attention, all layers) at both lengths, once with the key/value
// heads copied out per query head (repeat_kv, as Hugging Face does) and once with the query
// heads of a group as rows against the group's keys (BM_AttentionGroupedQueries, what the
// attention module does for one new token): the growth of the per-token time should match
// the latter.
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>

#include "blocks/models/model_module.h"
#include "blocks/registry.h"
#include "framework/nn/torch_version.h"
#include "framework/config/document.h"

namespace {

constexpr int64_t kHidden = 512, kLayers = 8, kHeads = 8, kGroups = 4, kHeadSize = 64;
constexpr int64_t kIntermediate = 1536, kVocab = 32000;
constexpr int64_t kGenerated = 32;  // tokens generated per iteration
constexpr int64_t kSlack = 64;      // cache capacity = prompt + kSlack

const std::string kText =
    "version: 1\nmodel:\n  type: language_model\n  hidden_size: " + std::to_string(kHidden) +
    "\n  add_linear_biases: false\n  embeddings: {vocab_size: " + std::to_string(kVocab) +
    "}\n  decoder:\n    type: repeat\n    num_layers: " + std::to_string(kLayers) +
    "\n    block:\n      type: transformer\n      mixer:\n        type: attention\n"
    "        heads: " +
    std::to_string(kHeads) + "\n        head_groups: " + std::to_string(kGroups) +
    "\n        head_size: " + std::to_string(kHeadSize) +
    "\n        rotary: {type: default, theta: 500000.0}\n"
    "      mlp: {type: gated, intermediate_size: " +
    std::to_string(kIntermediate) +
    "}\n      normalization: {type: rms_norm, epsilon: 1.0e-5}\n"
    "  head:\n    normalization: {type: rms_norm, epsilon: 1.0e-5}\n    tied: false\n";

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "decode_bench: %s\n", message.c_str());
  std::exit(1);
}

// Wall-clock and process CPU time (all threads). Batch-1 decoding is a chain of small BLAS
// calls whose worker threads stall whenever another process holds a core, so on a shared box
// wall time swings by 2-3x between runs; CPU time does not, and with
// OPENBLAS_NUM_THREADS=1 (no spinning workers) it is the work itself.
struct Stopwatch {
  static double cpu_now() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  std::chrono::steady_clock::time_point wall_start = std::chrono::steady_clock::now();
  double cpu_start = cpu_now();
  double wall() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  }
  double cpu() const { return cpu_now() - cpu_start; }
};

// Time and tokens of each benchmark, summed over repetitions
// (--benchmark_repetitions=N --benchmark_enable_random_interleaving=true spreads the machine's
// drift over both prompt lengths), for the summary at the end.
struct Sums {
  double wall = 0, cpu = 0;
  int64_t tokens = 0;
};
std::map<std::string, Sums> sums;

struct PerToken {
  double wall_ms = std::nan(""), cpu_ms = std::nan("");
};

// Sums of the timed parts of one run; `record` turns them into per-token counters.
struct Totals {
  double wall = 0, cpu = 0;
  void add(benchmark::State& state, const Stopwatch& watch) {
    const double w = watch.wall();
    cpu += watch.cpu();
    wall += w;
    state.SetIterationTime(w);
  }
  void record(benchmark::State& state, const std::string& key, int64_t tokens) {
    state.counters["ms_per_token"] = 1e3 * wall / static_cast<double>(tokens);
    state.counters["cpu_ms_per_token"] = 1e3 * cpu / static_cast<double>(tokens);
    Sums& s = sums[key];
    s.wall += wall;
    s.cpu += cpu;
    s.tokens += tokens;
  }
};

blocks::ModelModule& model() {
  static blocks::Model m = [] {
    blocks::config::Diagnostics diagnostics;
    auto doc = blocks::config::load_document_text(kText, "decode_bench.yaml", blocks::registry(),
                                                  diagnostics);
    if (!doc) fail("the benchmark config does not load:\n" + diagnostics.format());
    blocks::Model built = blocks::build_model(*doc->model, at::TensorOptions().dtype(at::kFloat));
    blocks::nn::initialize(built.parameters, /*seed=*/0);
    built.module->eval();
    return built;
  }();
  return *m.module;
}

at::Tensor prompt(int64_t length) {
  at::manual_seed(length);
  return at::randint(kVocab, {1, length}, at::kLong);
}

// The greedy next token [1, 1] of the last position.
at::Tensor next_token(const at::Tensor& logits) {
  return logits.select(1, -1).argmax(-1, /*keepdim=*/true);
}

// Decoding with the cache must give what a full forward over the same tokens gives: checked
// once on a short prompt, so the timings below are of a correct cache.
void check_cache() {
  c10::InferenceMode guard;
  const at::Tensor tokens = prompt(64);
  blocks::DecodeCache cache = model().make_cache(64 + kSlack);
  at::Tensor next = next_token(model().forward({.tokens = tokens, .cache = &cache}).logits);
  const at::Tensor cached = model().forward({.tokens = next, .cache = &cache}).logits.select(1, -1);
  const at::Tensor full = model().forward(at::cat({tokens, next}, 1)).logits.select(1, -1);
  const double diff = (cached - full).abs().max().item<double>();
  if (!(diff <= 1e-4))
    fail("cached decoding disagrees with a full forward: " + std::to_string(diff));
  int64_t parameters = 0;
  for (const auto& p : model().parameters()) parameters += p.numel();
  std::printf(
      "model: %.1fM parameters; cached decoding matches a full forward (max |logit "
      "difference| %.1e)\n",
      parameters / 1e6, diff);
}

// Prefill P tokens (untimed), then time kGenerated greedy tokens one at a time.
void BM_Decode(benchmark::State& state) {
  const int64_t length = state.range(0);
  c10::InferenceMode guard;
  const at::Tensor tokens = prompt(length);
  Totals totals;
  for (auto _ : state) {
    blocks::DecodeCache cache = model().make_cache(length + kSlack);
    at::Tensor next = next_token(model().forward({.tokens = tokens, .cache = &cache}).logits);
    const Stopwatch watch;
    for (int64_t i = 0; i < kGenerated; ++i)
      next = next_token(model().forward({.tokens = next, .cache = &cache}).logits);
    totals.add(state, watch);
  }
  totals.record(state, "cache/" + std::to_string(length), state.iterations() * kGenerated);
  state.counters["tokens_per_s"] = 1e3 / state.counters["ms_per_token"];
}
BENCHMARK(BM_Decode)->Arg(64)->Iterations(8)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)->Arg(1024)->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);

// The baseline: the next token from a full forward over prompt + 1 tokens, no cache.
void BM_NoCacheOneToken(benchmark::State& state) {
  const int64_t length = state.range(0);
  c10::InferenceMode guard;
  const at::Tensor tokens = prompt(length + 1);
  benchmark::DoNotOptimize(next_token(model().forward(tokens).logits));  // warm-up
  Totals totals;
  for (auto _ : state) {
    const Stopwatch watch;
    benchmark::DoNotOptimize(next_token(model().forward(tokens).logits));
    totals.add(state, watch);
  }
  totals.record(state, "nocache/" + std::to_string(length), state.iterations());
}
BENCHMARK(BM_NoCacheOneToken)
    ->Arg(1024)
    ->Iterations(3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// What attention over the cache costs per generated token, all layers, as the attention module
// does it for one new token: append to the cache, repeat the key/value groups to the heads
// (a copy of the cache), the [1, keys] causal mask (all true for one token), fused attention.
// Keys are the average cache length while generating kGenerated tokens after `length`.
// With `grouped`, the copy is avoided instead: the heads sharing a group become query rows of
// that group (exact for a single new token, whose mask row is all true), which is what the
// repeat costs.
void attention_only(benchmark::State& state, bool grouped) {
  const int64_t length = state.range(0);
  const int64_t keys = length + kGenerated / 2, per_group = kHeads / kGroups;
  c10::InferenceMode guard;
  at::manual_seed(0);
  std::vector<at::Tensor> cache_k, cache_v;
  for (int64_t l = 0; l < kLayers; ++l) {
    cache_k.push_back(at::randn({1, kGroups, length + kSlack, kHeadSize}));
    cache_v.push_back(at::randn({1, kGroups, length + kSlack, kHeadSize}));
  }
  const at::Tensor q = at::randn({1, kHeads, 1, kHeadSize});
  const at::Tensor k_new = at::randn({1, kGroups, 1, kHeadSize}), v_new = at::randn_like(k_new);
  const double scale = 1.0 / std::sqrt(static_cast<double>(kHeadSize));
  const auto longs = at::TensorOptions().dtype(at::kLong);
  auto repeat = [&](const at::Tensor& x) {
    return x.unsqueeze(2)
        .expand({1, kGroups, per_group, keys, kHeadSize})
        .reshape({1, kHeads, keys, kHeadSize});
  };
  Totals totals;
  for (auto _ : state) {
    const Stopwatch watch;
    for (int64_t l = 0; l < kLayers; ++l) {
      cache_k[l].narrow(2, keys - 1, 1).copy_(k_new);
      cache_v[l].narrow(2, keys - 1, 1).copy_(v_new);
      const at::Tensor k = cache_k[l].narrow(2, 0, keys), v = cache_v[l].narrow(2, 0, keys);
      if (grouped) {
        const at::Tensor out = blocks::nn::attention(q.view({1, kGroups, per_group, kHeadSize}),
                                                        k, v, {}, 0.0, false, scale);
        benchmark::DoNotOptimize(out.view({1, kHeads, 1, kHeadSize}));
        continue;
      }
      const at::Tensor query_index = at::arange(keys - 1, keys, longs).unsqueeze(1);
      const at::Tensor key_index = at::arange(keys, longs).unsqueeze(0);
      const at::Tensor mask =
          (at::ones({1, keys}, longs.dtype(at::kBool)) & (key_index <= query_index))
              .unsqueeze(0)
              .unsqueeze(0);
      benchmark::DoNotOptimize(
          blocks::nn::attention(q, repeat(k), repeat(v), mask, 0.0, false, scale));
    }
    totals.add(state, watch);
  }
  totals.record(state, (grouped ? "grouped/" : "attention/") + std::to_string(length),
                state.iterations());
}

void BM_AttentionOnly(benchmark::State& state) { attention_only(state, false); }
BENCHMARK(BM_AttentionOnly)
    ->Arg(64)
    ->Arg(1024)
    ->Iterations(200)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_AttentionGroupedQueries(benchmark::State& state) { attention_only(state, true); }
BENCHMARK(BM_AttentionGroupedQueries)
    ->Arg(64)
    ->Arg(1024)
    ->Iterations(200)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void summary() {
  auto get = [](const std::string& key) {
    const auto it = sums.find(key);
    if (it == sums.end()) return PerToken{};
    const double tokens = static_cast<double>(it->second.tokens);
    return PerToken{1e3 * it->second.wall / tokens, 1e3 * it->second.cpu / tokens};
  };
  const PerToken short_p = get("cache/64"), long_p = get("cache/1024");
  const PerToken attention_short = get("attention/64"), attention_long = get("attention/1024");
  const PerToken grouped_short = get("grouped/64"), grouped_long = get("grouped/1024");
  const PerToken no_cache = get("nocache/1024");
  std::printf("                                             wall ms/token   CPU ms/token\n");
  auto row = [](const char* name, const PerToken& p) {
    std::printf("  %-42s %13.2f %14.2f\n", name, p.wall_ms, p.cpu_ms);
  };
  row("decode with cache, P=64", short_p);
  row("decode with cache, P=1024", long_p);
  row("  growth 64 -> 1024", {long_p.wall_ms - short_p.wall_ms, long_p.cpu_ms - short_p.cpu_ms});
  row("attention alone with repeat_kv, P=64", attention_short);
  row("attention alone with repeat_kv, P=1024", attention_long);
  row("  growth 64 -> 1024", {attention_long.wall_ms - attention_short.wall_ms,
                              attention_long.cpu_ms - attention_short.cpu_ms});
  row("  grouped queries (the module), P=64", grouped_short);
  row("  grouped queries (the module), P=1024", grouped_long);
  row("no cache, P=1024 (one token)", no_cache);
  std::printf(
      "tokens/s with cache: %.1f at P=64, %.1f at P=1024 (wall); per-token cost x%.2f "
      "(wall), x%.2f (CPU); no cache costs x%.0f (wall) the cached token at P=1024\n",
      1e3 / short_p.wall_ms, 1e3 / long_p.wall_ms, long_p.wall_ms / short_p.wall_ms,
      long_p.cpu_ms / short_p.cpu_ms, no_cache.wall_ms / long_p.wall_ms);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  check_cache();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  summary();
  return 0;
}
