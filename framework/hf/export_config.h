// blocks document -> Hugging Face `config.json`, the inverse of import_config (config.h) for every
// registered family (family.h), written by the same key table import reads. A model the family
// cannot express is refused with every reason; the export is never a silently different
// architecture.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/diagnostics.h"
#include "framework/config/document.h"

namespace blocks::hf {

struct ExportOptions {
  // A registered family (hf::family_list()). Empty: the first of export_model_types() that can
  // express the model; when none can, the reasons of the family with the fewest are reported.
  std::string model_type;
  // Rotary families only: the context length readers (vLLM, generate) plan for. A blocks model
  // with rotary positions has no table that records it; absent: the key is left out.
  std::optional<int64_t> max_position_embeddings;
  // Written as `torch_dtype` when set (e.g. "bfloat16"): the precision of the saved weights.
  std::string torch_dtype;
  // Loads and resolves a document (load_document_text with blocks::registry(); null with the
  // reasons in the diagnostics). A composite export (llava) reads its config.json back through
  // import_config and this, and refuses a model that would come back different: the config
  // layer cannot tell otherwise whether every part of a fusion model has a Hugging Face key.
  std::function<std::optional<config::Document>(const config::Json&, config::Diagnostics&)>
      resolve;
};

// The families in the order an empty model_type tries them: the narrowest first, so that a
// plain Llama is not written as a Mistral without a window or a Qwen2 without biases.
const std::vector<std::string>& export_model_types();

// The config.json of a resolved blocks document: the JSON Document::dump() gives, every default
// explicit, e.g. import_config's output after loading. Keys and values follow import_config's
// reading, so import_config(export_config(doc)) resolves to `doc` again (training-only fields,
// lr_scale and initializations other than the normal std, are not architecture and are dropped).
// Null when the model cannot be expressed; every reason is then in `diagnostics` as
// `model.PATH: message` with an empty mark.
//
//   config::Diagnostics d;
//   auto doc = config::load_document("configs/llama3-8b.yaml", blocks::registry(), d);
//   auto hf = doc ? hf::export_config(doc->dump(), {.model_type = "llama"}, d) : std::nullopt;
std::optional<config::Json> export_config(const config::Json& document,
                                          const ExportOptions& options,
                                          config::Diagnostics& diagnostics);

// The same with only a model type ("": the first family that fits).
std::optional<config::Json> export_config(const config::Json& document,
                                          const std::string& model_type,
                                          config::Diagnostics& diagnostics);

}  // namespace blocks::hf
