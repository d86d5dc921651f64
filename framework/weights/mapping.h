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
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/error.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping_rules.h"

namespace blocks::weights {


// The rotary row permutation of `rule` (rows of `t` grouped in heads of `head_size`; 1-D biases
// too); `inverse` applies the opposite direction.
at::Tensor rotary_permute(const at::Tensor& t, int64_t head_size, MappingRule::Rotary rotary,
                          bool inverse = false);

// The built-in table of a Hugging Face `model_type` (llama, mistral, qwen2, mixtral, gpt2), or
// throws MappingError listing the known ones.
const Mapping& hf_mapping(const std::string& model_type);
std::vector<std::string> hf_mapping_names();
// The table of a model_type whose names depend on the model: `llava` (its text family
// `text_type`; the tower layers `model`, a resolved early_fusion dump, does not build are
// skipped by explicit rules, each said in `notes`). Other types: hf_mapping(model_type).
Mapping hf_mapping(const std::string& model_type, const config::Json& model,
                   const std::string& text_type, std::vector<std::string>* notes = nullptr);
// The table for loading one component of a model (`--weights decoder=FOLDER`): a checkpoint of
// `model_type` (a language model family; `clip_vision_model` or `clip` for a fusion model's
// encoder slot, `component` then being that slot's resolved dump) into names relative to the
// component. Throws MappingError for a model_type with no table.
Mapping component_mapping(const std::string& model_type, const config::Json& component,
                          std::vector<std::string>* notes = nullptr);

// Blocks' own names: every checkpoint tensor to the parameter of the same name (what
// load_safetensors loads through). Its reports name each tensor once.
const Mapping& identity_mapping();


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

// Where export_mapped puts one parameter: the rule whose target produces it, which of the
// rule's targets it is, and the checkpoint name(s) it goes into.
struct ExportPlace {
  const MappingRule* rule = nullptr;
  size_t part = 0;                       // index in rule->to (a split's part)
  std::vector<std::string> parts;        // every target of the rule, captures filled
  // The checkpoint name, prefix included; for a stacking rule, the name of slice `index`.
  std::string checkpoint_name(int64_t index = -1) const;

  std::map<size_t, std::string> captures;
  std::string prefix;
};
// Throws MappingError when no rule produces `parameter`.
ExportPlace export_place(const std::string& parameter, const Mapping& mapping);

// The inverse: `parameters` in the mapping's foreign names (splits concatenated, transposes
// undone, stacks unstacked), in parameter order. Ignored checkpoint tensors (buffers) are not
// made. Throws MappingError for a parameter no rule produces.
std::vector<std::pair<std::string, at::Tensor>> export_mapped(
    const std::vector<std::pair<std::string, at::Tensor>>& parameters, const Mapping& mapping);

}  // namespace blocks::weights
