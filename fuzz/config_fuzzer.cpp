// libFuzzer target for everything a config file goes through: YAML or JSON loading with
// limits, parsing against the registry, resolution and dumping. Any input must end in a
// document or in diagnostics, never in a crash, hang or unbounded allocation; valid documents
// are also drawn.
// Run: ./build-fuzz/fuzz/config_fuzzer -max_total_time=60 -rss_limit_mb=2048 fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"
#include "framework/graph/graph.h"
#include "framework/graph/render.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace blocks::config;
  if (size == 0) return 0;
  // The first byte picks the format, so one corpus exercises both loaders.
  const bool json = data[0] & 1;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  LoadOptions options;
  options.limits.max_nodes = 100'000;
  Diagnostics diagnostics;
  auto node = json ? load_json(text, "fuzz.json", diagnostics, options.limits)
                   : load_yaml(text, "fuzz.yaml", diagnostics, options.limits);
  if (!node) return 0;
  auto doc = parse_document(*node, blocks::registry(), diagnostics);
  if (!doc) return 0;
  resolve_document(*doc, diagnostics);
  if (diagnostics.ok()) {
    (void)to_yaml(doc->dump());
    blocks::graph::Options drawing;
    drawing.depth = 4;
    const auto graph = blocks::graph::build_graph(*doc->model, drawing);
    (void)blocks::graph::to_dot(graph, "fuzz");
    (void)blocks::graph::to_mermaid(graph);
  }
  (void)diagnostics.format();
  return 0;
}
