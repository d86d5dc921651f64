// Speed of drawing: llama3-70b from YAML to DOT, Mermaid and SVG (the target: under 200 ms).
// The baseline in the same run is loading and resolving the config alone.
//   ./build/benchmarks/graph_bench
#include <benchmark/benchmark.h>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/graph/graph.h"
#include "framework/graph/render.h"

namespace {

const char* kConfig = BLOCKS_SOURCE_DIR "/configs/llama3-70b.yaml";

blocks::config::Document load() {
  blocks::config::Diagnostics d;
  auto doc = blocks::config::load_document(kConfig, blocks::registry(), d);
  if (!doc) throw std::runtime_error(d.format());
  return std::move(*doc);
}

void BM_LoadResolveBaseline(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(load());
}
BENCHMARK(BM_LoadResolveBaseline)->Unit(benchmark::kMillisecond);

void BM_DrawDot(benchmark::State& state) {
  for (auto _ : state) {
    auto doc = load();
    benchmark::DoNotOptimize(
        blocks::graph::to_dot(blocks::graph::build_graph(*doc.model), kConfig));
  }
}
BENCHMARK(BM_DrawDot)->Unit(benchmark::kMillisecond);

void BM_DrawMermaid(benchmark::State& state) {
  for (auto _ : state) {
    auto doc = load();
    benchmark::DoNotOptimize(blocks::graph::to_mermaid(blocks::graph::build_graph(*doc.model)));
  }
}
BENCHMARK(BM_DrawMermaid)->Unit(benchmark::kMillisecond);

// Includes running Graphviz's dot as a process.
void BM_DrawSvg(benchmark::State& state) {
  for (auto _ : state) {
    auto doc = load();
    std::string error;
    auto svg = blocks::graph::to_svg(
        blocks::graph::to_dot(blocks::graph::build_graph(*doc.model), kConfig), error);
    if (!svg) state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(svg);
  }
}
BENCHMARK(BM_DrawSvg)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
