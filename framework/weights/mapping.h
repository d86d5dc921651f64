// Checkpoint name mappings as data: an ordered list of rules from foreign tensor names (Hugging
// Face's) to blocks' parameter names, with the layout changes some families need (GPT-2's Conv1D
// transposes, fused qkv splits, Mixtral's per-expert tensors stacked). Loading applies a mapping
// one checkpoint tensor at a time; exporting applies it backwards, bit for bit.
//
//   auto files = weights::checkpoint_files("Meta-Llama-3-8B");   // index.json or one file
//   weights::load_mapped(targets, files, weights::hf_mapping("llama"));
//   weights::write_safetensors("out.safetensors", weights::export_mapped(named, mapping));
#pragma once

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "framework/weights/load.h"

namespace blocks::weights {

// One rule. `from` is an ECMAScript regex matched against the whole checkpoint name; each `to`
// is a template where `$N` is the Nth capture. For export, `from` must be simple: literal text
// with `\.` escapes, capture groups `(...)` and optional groups `(?:...)?` (written out).
struct MappingRule {
  std::string from;
  std::vector<std::string> to;  // one target; several: split into equal parts (below); none: ignore
  bool transpose = false;       // swap the dims of a 2-D checkpoint tensor first (GPT-2 Conv1D)
  int64_t split_dim = 0;        // with several targets: the dim (after transpose) split in parts
  int stack_capture = 0;        // > 0: capture N is the index along a new dim 0 of the target
                                // (Mixtral experts.{e}.w1 -> gate[e]); `$N` is absent from `to`
  bool ignore() const { return to.empty(); }
};

struct Mapping {
  std::string name;  // "gpt2", a file path, ...
  std::vector<MappingRule> rules;
};

class MappingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The built-in table of a Hugging Face `model_type` (llama, mistral, qwen2, mixtral, gpt2), or
// throws MappingError listing the known ones.
const Mapping& hf_mapping(const std::string& model_type);
std::vector<std::string> hf_mapping_names();

// A user mapping in YAML:
//   rules:
//     - {from: 'model\.layers\.(\d+)\.q\.weight', to: decoder.$1.mixer.query.weight}
//     - {from: 'h\.(\d+)\.c_attn\.weight', to: [q.$1, k.$1, v.$1], transpose: true, split_dim: 0}
//     - {from: 'e\.(\d+)\.(\d+)\.w1', to: decoder.$1.mlp.gate.weight, stack_capture: 2}
//     - {from: '.*\.attn\.bias'}          # no `to`: ignored
// Throws MappingError with the file and what is wrong.
Mapping load_mapping_file(const std::string& path);

// The safetensors files of a folder: those named by `model.safetensors.index.json`'s weight_map,
// else `model.safetensors`. Throws MappingError when neither is there.
std::vector<std::string> checkpoint_files(const std::string& folder);

// Fills `parameters` (blocks' names) from `files` (foreign names) through `mapping`. Strict:
// throws LoadError listing every missing, unexpected (checkpoint names no rule maps, or mapped to
// no parameter) and mis-shaped tensor (both shapes) before copying anything. Each checkpoint
// tensor is read (zero copy where it can be), transformed and copied into its target in turn.
LoadReport load_mapped(const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                       const std::vector<std::string>& files, const Mapping& mapping,
                       bool strict = true);

// The inverse: `parameters` in the mapping's foreign names (splits concatenated, transposes
// undone, stacks unstacked), in parameter order. Ignored checkpoint tensors (buffers) are not
// made. Throws MappingError for a parameter no rule produces.
std::vector<std::pair<std::string, at::Tensor>> export_mapped(
    const std::vector<std::pair<std::string, at::Tensor>>& parameters, const Mapping& mapping);

}  // namespace blocks::weights
