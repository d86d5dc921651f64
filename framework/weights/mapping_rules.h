// Mapping rules as data, apart from the loading that applies them (mapping.h): torch-free, so a
// mapping file's parser builds and is fuzzed without LibTorch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/config/error.h"

namespace blocks::weights {

// One rule. `from` is a regex (PCRE2 syntax, framework/weights/name_pattern.h) matched against the whole checkpoint name; each `to`
// is a template where `$N` is the Nth capture. For export, `from` must be simple: literal text
// with `\.` escapes, capture groups `(...)` and optional groups `(?:...)?` (written out).
struct MappingRule {
  std::string from;
  std::vector<std::string> to;  // one target; several: split into equal parts (below); none: ignore
  bool transpose = false;       // swap the dims of a 2-D checkpoint tensor first (GPT-2 Conv1D)
  int64_t split_dim = 0;        // with several targets: the dim (after transpose) split in parts
  std::vector<int64_t> split_sizes;  // each part's size along split_dim; empty: equal parts
  int stack_capture = 0;        // > 0: capture N is the index along a new dim 0 of the target
                                // (Mixtral experts.{e}.w1 -> gate[e]); `$N` is absent from `to`
  int layer_capture = 0;        // > 0: capture N is a layer index (Mapping::layers applies to it)
  // Rotary row permutation of q/k projections (rows grouped per head of `head_size`), applied
  // after transpose and slice, before split: `interleaved_to_half` turns Meta's pairs
  // (2i, 2i+1) into Hugging Face's halves (i, i + d/2) (convert_llama_weights_to_hf.py's
  // `w.view(h, d/2, 2, n).transpose(1, 2).reshape(h*d, n)`); `half_to_interleaved` is its inverse.
  // Both are undone on export.
  enum class Rotary { none, half_to_interleaved, interleaved_to_half };
  Rotary rotary = Rotary::none;
  int64_t head_size = 0;
  // Keeps checkpoint [slice_start, slice_end) along slice_dim (after transpose). Load only:
  // export_mapped throws for a rule with a slice (the dropped part is unknown).
  bool slice = false;
  int64_t slice_dim = 0, slice_start = 0, slice_end = 0;
  // A parameter name the target may be tied to: when the model lacks the target (a language
  // model whose output matrix is its embeddings), the checkpoint tensor must equal the one that
  // loads into `tied_to` and is then skipped; a different tensor is a mismatch, never dropped.
  // (Hugging Face writes lm_head.weight beside embed_tokens.weight for some tied models.)
  std::string tied_to;
  bool ignore() const { return to.empty(); }
};

// Loading a subset of layers: checkpoint layer indices in [from, to] (the `layer_capture` of
// each rule) load into layer index + offset; other checkpoint layers are skipped (neither loaded
// nor unexpected). Checkpoint layers 8-11 into a 4-layer stack: {8, 11, -8}.
struct LayerRange {
  int64_t from = 0, to = 0, offset = 0;
};

struct Mapping {
  std::string name;  // "gpt2", a file path, ...
  std::vector<MappingRule> rules;
  // Only checkpoint tensors whose names start with this prefix are considered (others are
  // skipped, not unexpected); the prefix is stripped before rules match and added on export.
  // AllenNLP's `relevant_module` (e.g. "model." of a wrapper, written without the dot too).
  std::string relevant_module;
  std::optional<LayerRange> layers;
  // Integer or bool checkpoint tensors may load into float parameters (converted by value);
  // otherwise that is a mismatch.
  bool allow_kind_change = false;
};

class MappingError : public Error {
 public:
  using Error::Error;
};

// A user mapping in YAML:
//   rules:
//     - {from: 'model\.layers\.(\d+)\.q\.weight', to: decoder.$1.mixer.query.weight}
//     - {from: 'h\.(\d+)\.c_attn\.weight', to: [q.$1, k.$1, v.$1], transpose: true, split_dim: 0}
//     - {from: 'e\.(\d+)\.(\d+)\.w1', to: decoder.$1.mlp.gate.weight, stack_capture: 2}
//     - {from: '.*\.attn\.bias'}          # no `to`: ignored
//     - {from: 'l\.(\d+)\.wq', to: decoder.$1.mixer.query.weight, layer_capture: 1,
//        rotary_permute: interleaved_to_half, head_size: 64}
//     - {from: 'emb', to: embeddings.word.weight, slice: {dim: 0, start: 0, end: 32000}}
//     - {from: 'lm_head\.weight', to: head.output.weight, tied_to: embeddings.word.weight}
//   relevant_module: model.          # optional
//   layers: {from: 8, to: 11, offset: -8}   # optional, with layer_capture in rules
//   allow_kind_change: true          # optional: integer or bool tensors may load into floats
// Throws MappingError listing every problem of the file (FILE:LINE:COL: error: PATH: message).
Mapping load_mapping_file(const std::string& path);

}  // namespace blocks::weights
