// Decoding a deep-fusion model with the cross-attention keys and values cached at prefill,
// against giving the memory again at every step (each cross-attention layer then projects the
// whole memory to keys and values per token, as a cacheless loop would):
//   ./build/benchmarks/fusion_decode_bench --benchmark_counters_tabular=true
// The model is the 58M Llama-style decoder of decode_bench (hidden 512, 8 layers, GQA 8 heads
// / 4 groups) with gated cross-attention before layers 3 and 7 into a memory of 64 or 1024
// vectors of width 512; batch 1, float32, no autograd, a 16-token prompt and 32 generated
// tokens. With the cache, what grows with the memory is only the attention over it (2 layers x
// memory x 512 multiply-adds twice per token), so tokens/s at 64 and 1024 memory vectors
// should differ by little; without it, the key/value projections (2 x 2 x memory x 512 x 256
// per token) dominate at 1024. The Python eager peer of the same model, written as Meta's
// llama-models multimodal reference code decodes, is benchmarks/fusion_decode_peer.py; run it
// beside this one with the same OPENBLAS_NUM_THREADS for the ratio.
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "blocks/models/model_module.h"
#include "blocks/registry.h"
#include "framework/config/document.h"

namespace {

constexpr int64_t kPrompt = 16, kGenerated = 32;

const std::string kText = R"(version: 1
model:
  type: deep_fusion
  decoder:
    type: language_model
    hidden_size: 512
    add_linear_biases: false
    embeddings: {vocab_size: 32000}
    decoder:
      type: repeat
      num_layers: 8
      block:
        type: transformer
        mixer: {type: attention, heads: 8, head_groups: 4, head_size: 64, rotary: {type: default}}
        mlp: {type: gated, intermediate_size: 1536}
        normalization: {type: rms_norm, epsilon: 1.0e-5}
    head: {normalization: {type: rms_norm, epsilon: 1.0e-5}, tied: false}
  encoder:
    encoder: {type: features, width: 512, tokens: 64}
  fusion_layers:
    every: 4
    block:
      type: gated_cross_attention
      attention: {heads: 8, head_groups: 4, head_size: 64}
      mlp: {type: gated, intermediate_size: 1536}
      normalization: {type: rms_norm, epsilon: 1.0e-5}
      attention_gate: {initialization: {type: fill, value: 0.5}}
      mlp_gate: {initialization: {type: fill, value: 0.5}}
)";

blocks::Model& model() {
  static blocks::Model m = [] {
    blocks::config::Diagnostics d;
    auto doc = blocks::config::load_document_text(kText, "fusion_decode_bench.yaml",
                                                  blocks::registry(), d);
    if (!doc) {
      std::fprintf(stderr, "%s", d.format().c_str());
      std::exit(1);
    }
    blocks::Model built = blocks::build_model(*doc->model);
    blocks::nn::initialize(built.parameters, 0);
    built.module->eval();
    return built;
  }();
  return m;
}

// Prefill then greedy decoding; `again`: the memory is given at every step.
void decode(benchmark::State& state, bool again) {
  c10::InferenceMode guard;
  const int64_t memory = state.range(0);
  blocks::Model& m = model();
  at::manual_seed(0);
  const at::Tensor features = at::randn({1, memory / 64, 64, 512});
  const at::Tensor prompt = at::randint(0, 32000, {1, kPrompt}, at::kLong);
  for (auto _ : state) {
    blocks::DecodeCache cache = m.module->make_cache(kPrompt + kGenerated);
    blocks::ModelInput first{.tokens = prompt};
    first.named["features"] = features;
    first.cache = &cache;
    at::Tensor next = m.module->forward(first).logits.select(1, kPrompt - 1).argmax(-1, true);
    for (int64_t t = 0; t < kGenerated; ++t) {
      blocks::ModelInput step{.tokens = next};
      if (again) step.named["features"] = features;
      step.cache = &cache;
      next = m.module->forward(step).logits.select(1, 0).argmax(-1, true);
    }
    benchmark::DoNotOptimize(next);
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(kGenerated),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

void BM_CachedMemory(benchmark::State& state) { decode(state, false); }
void BM_MemoryEveryStep(benchmark::State& state) { decode(state, true); }

BENCHMARK(BM_CachedMemory)->Arg(64)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MemoryEveryStep)->Arg(64)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
