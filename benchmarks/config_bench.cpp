// Speed of the config layer: validate + resolve (+ dump) of a 1,000-block `fixed` sequence,
// the target being under 100 ms. The baseline in the same run is yaml-cpp's own parse
// of the same text, so the ratio says what the typed layer costs on top of reading YAML.
//   ./build/benchmarks/config_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <sstream>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"

namespace {

std::string fixed_sequence(int blocks) {
  std::ostringstream s;
  s << "version: 1\nmodel:\n  type: language_model\n  hidden_size: 4096\n"
       "  embeddings: {vocab_size: 128256}\n  head:\n    normalization: {type: rms_norm}\n"
       "  decoder:\n    type: fixed\n    blocks:\n";
  for (int i = 0; i < blocks; ++i) {
    s << "      - type: transformer\n"
         "        mixer: {type: attention, heads: 32, head_groups: 8, rotary: {type: default, "
         "theta: 500000}}\n"
         "        mlp: {type: gated, intermediate_size: 14336}\n"
         "        normalization: {type: rms_norm, epsilon: 1.0e-5}\n";
  }
  return s.str();
}

const std::string& text() {
  static const std::string t = fixed_sequence(1000);
  return t;
}

void BM_YamlCppParseBaseline(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(YAML::Load(text()));
  state.counters["bytes"] = static_cast<double>(text().size());
}
BENCHMARK(BM_YamlCppParseBaseline)->Unit(benchmark::kMillisecond);

void BM_ValidateResolve1000Blocks(benchmark::State& state) {
  const auto& registry = blocks::registry();
  for (auto _ : state) {
    blocks::config::Diagnostics d;
    auto doc = blocks::config::load_document_text(text(), "bench.yaml", registry, d);
    if (!doc) state.SkipWithError(d.format().c_str());
    benchmark::DoNotOptimize(doc);
  }
}
BENCHMARK(BM_ValidateResolve1000Blocks)->Unit(benchmark::kMillisecond);

void BM_ValidateResolveDump1000Blocks(benchmark::State& state) {
  const auto& registry = blocks::registry();
  for (auto _ : state) {
    blocks::config::Diagnostics d;
    auto doc = blocks::config::load_document_text(text(), "bench.yaml", registry, d);
    if (!doc) state.SkipWithError(d.format().c_str());
    benchmark::DoNotOptimize(blocks::config::to_yaml(doc->dump()));
  }
}
BENCHMARK(BM_ValidateResolveDump1000Blocks)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
