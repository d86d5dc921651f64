// Hugging Face LLaVA (model_type `llava`, transformers' LlavaConfig and
// LlavaForConditionalGeneration): a CLIP vision tower (`vision_config`, CLIPVisionConfig), a
// two-layer projector, and a language model (`text_config`, any family blocks converts) as one
// `early_fusion` document; and the checkpoint names of both layouts transformers has used.
// Torch-free: import, export and the weights layer read it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/diagnostics.h"
#include "framework/config/node.h"
#include "framework/hf/export_config.h"
#include "framework/hf/family.h"

namespace blocks::hf {

// Converts a language model's config.json (a family's) into a document; how the import of a
// text_config reuses the families.
using TextConverter =
    std::function<std::optional<config::Json>(const config::Node&, config::Diagnostics&)>;

// A llava config.json as an early_fusion document; every key converted or known irrelevant, the
// sub-configs' problems at `hf.text_config.KEY` and `hf.vision_config.KEY`. `defaults` receives
// one line per class default the file left out and the conversion used ("vision_config
// num_channels: 3 (CLIPVisionConfig)"), since hub files list only overrides.
std::optional<config::Json> convert_llava(const config::Node& hf, config::Diagnostics& d,
                                          const TextConverter& text,
                                          std::vector<std::string>* defaults = nullptr);

// A clip_vision_model config.json (CLIPVisionModel) or a clip one (CLIPModel, whose vision
// tower alone converts) as an encoder_model document: the tower's last_hidden_state, every
// token, before post_layernorm. Class defaults used go to `defaults` as convert_llava says them.
std::optional<config::Json> convert_clip(const config::Node& hf, config::Diagnostics& d,
                                         std::vector<std::string>* defaults = nullptr);

// The inverse: an early_fusion document (resolved, Document::dump()) as a llava config.json,
// the decoder written by `text` (export_config of a language model, `options` passed on, its
// reasons below `model.decoder.`). LLaVA holds one `image` encoder (a CLIP-convention
// vision_transformer), one `mlp` connector and the placeholder in the decoder's vocabulary;
// anything else is refused at its path. With `options.resolve` set the written file is read
// back through import_config and must resolve to the same architecture; without it the export
// is refused (nothing else can tell every fusion field has a key).
using TextExporter = std::function<std::optional<config::Json>(
    const config::Json&, const ExportOptions&, config::Diagnostics&)>;
std::optional<config::Json> export_llava(const config::Json& document,
                                         const ExportOptions& options,
                                         const TextExporter& text, config::Diagnostics& d);

// The checkpoint names of a llava folder for a model document (an early_fusion over the
// text family `text_type`): LlavaForConditionalGeneration's on-disk layout
// (language_model.model.*, language_model.lm_head.weight, vision_tower.vision_model.*,
// multi_modal_projector.linear_{1,2}.*) and the in-memory layout of newer transformers
// (model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*, lm_head.weight).
// Text rules are the family's, aimed below `decoder.`. Tower layers the model does not build
// (past its last selected feature layer) and CLIP's post_layernorm are ignored by explicit
// rules, each described in `notes`.
struct LlavaNames {
  // The text family's rules in both layouts, aimed below `decoder.` (a tied rule's embeddings
  // are the decoder's: decoder.embeddings.word.weight).
  std::vector<TensorName> text;
  std::vector<TensorName> vision;  // the tower and the projector, in blocks' names
  std::vector<std::string> notes;
};
LlavaNames llava_names(const Family& text_family, const config::Json& model);

// The names of a CLIP checkpoint (clip_vision_model's `vision_model.*`, or a whole clip model
// whose text tower is skipped) for a fusion encoder slot: targets `encoder.*` below it, the
// resolved vision_transformer `tower` saying which layers are built.
std::vector<TensorName> clip_vision_names(const config::Json& tower,
                                          std::vector<std::string>* notes = nullptr);

// `text_config.model_type` of a llava config.json (default `llama`, as LlavaConfig has it).
std::string llava_text_type(const config::Node& hf);

}  // namespace blocks::hf
