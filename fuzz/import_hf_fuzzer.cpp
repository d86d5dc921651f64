// libFuzzer target for `blockc import hf`: a config.json (JSON, or YAML, by the first byte)
// converted to a blocks document, which is then loaded and resolved as `blockc validate` would.
// Any input must end in a document or in diagnostics: never a crash, a hang or an exception.
// (A converted document the loader refuses is caught by `blockc import hf` before writing.)
// Run: ./build-fuzz/fuzz/import_hf_fuzzer -max_total_time=600 -rss_limit_mb=2048 tests/fixtures/hf
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"
#include "framework/config/load.h"
#include "framework/hf/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace blocks::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Diagnostics diagnostics;
  LoadLimits limits;
  limits.max_nodes = 100'000;
  auto node = !text.empty() && text[0] == '{' ? load_json(text, "config.json", diagnostics, limits)
                                               : load_yaml(text, "config.yaml", diagnostics, limits);
  if (!node) return 0;
  const auto doc = blocks::hf::import_config(*node, diagnostics);
  if (!doc) return 0;
  Diagnostics check;
  (void)load_document_text(to_yaml(*doc), "converted.yaml", blocks::registry(), check);
  (void)check.format();
  return 0;
}
