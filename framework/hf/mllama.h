// Hugging Face Llama 3.2 Vision (model_type `mllama`, transformers' MllamaConfig and
// MllamaForConditionalGeneration) as a `deep_fusion` document, and its checkpoint names.
// transformers stores the text side as one list of layers, self-attention and cross-attention
// interleaved (cross_attention_layers index that list); blocks keeps the self-attention layers
// as the decoder (decoder.decoder.N) and puts each cross-attention layer before the decoder
// layer that follows it (fusion_layers.N). The tiled vision tower is not modelled: its output
// enters as the input `vision_features` [batch, images x tiles, tokens per tile,
// vision_output_dim], and the vision_model.* tensors are skipped by explicit rules.
// Torch-free: import and the weights layer read it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/diagnostics.h"
#include "framework/config/node.h"
#include "framework/hf/family.h"
#include "framework/hf/llava.h"

namespace blocks::hf {

// An mllama config.json as a deep_fusion document: text_config through the llama family (its
// self-attention layers), the cross-attention layers as fusion layers, the projector, the 8
// extra token rows; problems at `hf.KEY`, `hf.text_config.KEY`, `hf.vision_config.KEY`.
std::optional<config::Json> convert_mllama(const config::Node& hf, config::Diagnostics& d,
                                           const TextConverter& text,
                                           std::vector<std::string>* defaults = nullptr);

// The decoder layer (blocks' numbering) each of transformers' cross-attention layer indices
// stands before: index - the cross layers before it.
std::vector<int64_t> fusion_positions(const std::vector<int64_t>& cross_attention_layers);

// The checkpoint names of an mllama folder for a deep_fusion document (resolved dump) in both
// of transformers' layouts: on disk (language_model.model.layers.H..., language_model.lm_head,
// multi_modal_projector, vision_model) and in memory (model.language_model..., lm_head,
// model.multi_modal_projector, model.vision_model). Layer H of the interleaved list maps to its
// decoder or fusion layer; embed_tokens splits into the decoder's table and the fusion rows.
std::vector<TensorName> mllama_names(const config::Json& model, std::vector<std::string>* notes);

}  // namespace blocks::hf
