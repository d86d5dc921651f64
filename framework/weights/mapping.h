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

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "framework/config/error.h"
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

// The rotary row permutation of `rule` (rows of `t` grouped in heads of `head_size`; 1-D biases
// too); `inverse` applies the opposite direction.
at::Tensor rotary_permute(const at::Tensor& t, int64_t head_size, MappingRule::Rotary rotary,
                          bool inverse = false);

// The built-in table of a Hugging Face `model_type` (llama, mistral, qwen2, mixtral, gpt2), or
// throws MappingError listing the known ones.
const Mapping& hf_mapping(const std::string& model_type);
std::vector<std::string> hf_mapping_names();

// Blocks' own names: every checkpoint tensor to the parameter of the same name (what
// load_safetensors loads through). Its reports name each tensor once.
const Mapping& identity_mapping();

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
// Throws MappingError listing every problem of the file (FILE:LINE:COL: error: PATH: message).
Mapping load_mapping_file(const std::string& path);

// The safetensors files of a Hugging Face folder, chosen as transformers does: `model.safetensors`
// when present (with `note`, when given, saying so if an index is there too), else the shards
// `model.safetensors.index.json`'s weight_map names. Throws MappingError when neither is there,
// or when the index names a file outside the folder, lists a tensor twice, puts one in a shard
// that lacks it, or leaves a tensor of a shard unlisted.
std::vector<std::string> checkpoint_files(const std::string& folder, std::string* note = nullptr);

// Fills `parameters` (blocks' names) from `files` (foreign names) through `mapping`. Strict:
// throws LoadError listing every missing, unexpected (checkpoint names no rule maps, or mapped to
// no parameter) and mis-shaped tensor (both shapes) before copying anything. Each checkpoint
// tensor is read (zero copy where it can be), transformed and copied into its target in turn;
// a tensor that needs no transform is copied (and converted) a few MiB at a time, so a load
// holds the model plus at most one checkpoint tensor, never a second copy of the checkpoint.
// `progress`, when given, is called with (bytes done, bytes) of the model as loading goes.
LoadReport load_mapped(const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                       const std::vector<std::string>& files, const Mapping& mapping,
                       bool strict = true,
                       const std::function<void(size_t, size_t)>& progress = {});

// load_mapped in steps, for loaders that stream each parameter elsewhere once filled
// (load_distributed's mem_efficient): opening the files and checking every name and shape
// happen in the constructor; fill(i) copies into parameter i.
class MappedLoad {
 public:
  MappedLoad(const std::vector<std::pair<std::string, at::Tensor>>& parameters,
             const std::vector<std::string>& files, const Mapping& mapping);
  ~MappedLoad();
  MappedLoad(MappedLoad&&) noexcept;
  // Missing, unexpected and mis-shaped tensors (loaded is 0).
  const LoadReport& report() const;
  // Throws load_mapped's LoadError when the report lists any problem.
  void throw_if_strict_fails() const;
  // How many checkpoint tensors fill(i) will copy.
  size_t pieces(size_t i) const;
  // Copies every checkpoint tensor aimed at parameter i (skipping reported problems); returns
  // how many it copied (0: nothing for this parameter).
  size_t fill(size_t i);

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string name_;
};

// The inverse: `parameters` in the mapping's foreign names (splits concatenated, transposes
// undone, stacks unstacked), in parameter order. Ignored checkpoint tensors (buffers) are not
// made. Throws MappingError for a parameter no rule produces.
std::vector<std::pair<std::string, at::Tensor>> export_mapped(
    const std::vector<std::pair<std::string, at::Tensor>>& parameters, const Mapping& mapping);

}  // namespace blocks::weights
