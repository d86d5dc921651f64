// Hugging Face folders with their tensors: what a program linking blocks needs to run or write
// one (config.json is framework/hf/folder.h). Functions take named tensors (blocks' parameter
// names, e.g. from an nn::ParameterTable), never a model type.
//
//   config::Diagnostics d;
//   auto doc = hf::folder_document("Llama-3-8B", blocks::registry(), d);
//   auto model = blocks::build_model(*doc->model, at::TensorOptions().dtype(
//       weights::checkpoint_dtype(weights::checkpoint_files("Llama-3-8B"))));
//   weights::load_hf_folder(named(model), "Llama-3-8B");
//   weights::save_hf_folder("out", *hf::export_config(doc->dump(), "", d), named(model));
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "framework/config/document.h"
#include "framework/config/registry.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"

namespace blocks::weights {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The configs some weights were made for differ from the model's in architecture fields.
class ArchitectureError : public Error {
 public:
  using Error::Error;
};

// Checkpoint files of `weights` (safetensors files, or Hugging Face folders: their shards) and
// the Hugging Face family naming them: `model_type` to start with ("" for none, e.g. the family
// of --model's folder), then each folder's. Throws MappingError when folders of two families mix.
struct WeightSources {
  std::vector<std::string> files;
  std::string model_type;  // empty: blocks' own names (or a user mapping's)
  std::string text_type;   // a llava folder's text_config.model_type
  std::vector<std::string> notes;  // which files a folder holding several choices gave
};
// `text_config.model_type` of the llava folder `folder` (llama where it says none).
std::string hf_text_type(const std::string& folder);
WeightSources weight_sources(const std::vector<std::string>& weights,
                             const std::string& model_type = "");

// Checks `model` against the configs `weights` were made for, before anything loads: each
// Hugging Face folder's config.json (converted as `blockc import hf` does) and the
// "blocks_config" metadata `blockc init` and `blockc export` write into safetensors files.
// Throws ArchitectureError listing every architecture difference, or config::ConfigError when a
// folder's config.json does not convert.
// The same for one component of a composite model (`decoder`, `encoders.image`) and the
// Hugging Face folder it loads from (--weights COMPONENT=FOLDER): the folder's config.json,
// converted, against that component's config, when the folder holds that kind of model (a
// language model for a decoder, a vision tower for an encoder; other pairs are left to the
// tensor names). An encoder may read other layers than the checkpoint's own model did and be
// built shallower (feature_layers, drop_class_token, the body's depth are the model's choice).
// Shapes alone would miss an activation, an epsilon, a head count of the same width.
void check_component_architecture(const config::Document& model, const std::string& component,
                                  const std::string& folder, const config::Registry& registry);

void check_architecture(const config::Document& model, const std::vector<std::string>& weights,
                        const config::Registry& registry);

// The dtype (float32, bfloat16, float16 or float64) most of the checkpoint's bytes are in
// (float32 when none).
at::ScalarType checkpoint_dtype(const std::vector<std::string>& files);

// Fills `parameters` (blocks' names) from the checkpoint of Hugging Face folder `folder`
// through its family's name table (load_mapped, strict).
LoadReport load_hf_folder(const NamedTensors& parameters, const std::string& folder,
                          const std::function<void(size_t, size_t)>& progress = {});

// Writes `tensors` (already in the checkpoint's names) to `folder` as Hugging Face does:
// model.safetensors, or shards of at most `max_shard` bytes (a larger tensor gets a shard of its
// own) named model-0000K-of-0000N.safetensors with model.safetensors.index.json (removing a
// model.safetensors there, which readers would load instead). Returns the names it wrote.
std::vector<std::string> write_shards(const std::string& folder, const NamedTensors& tensors,
                                      uint64_t max_shard);

// Checks that `folder` may receive a checkpoint (as save_hf_folder does before writing) and
// returns the old checkpoint's files in it. Throws io::FileError when it is a file, under /proc,
// or not empty without `replace`.
std::vector<std::string> check_hf_output_folder(const std::string& folder, bool replace);

// A Hugging Face folder: `config` (export_config's config.json) and `parameters` (blocks' names)
// in the family's names, sharded at `max_shard` bytes. Returns how many tensors it wrote.
// `folder` must be absent or empty unless `replace`: then the old checkpoint's files (config.json,
// model.safetensors, the index, shards) that the new one does not rewrite are removed, and other
// files are kept. Throws io::FileError for a folder it must not write (a file, /proc, not empty).
size_t save_hf_folder(const std::string& folder, const config::Json& config,
                      const NamedTensors& parameters, uint64_t max_shard = 5'000'000'000,
                      bool replace = false);
// The same in the names of `mapping` (a composite model's: hf_mapping("llava", model, ...)).
size_t save_hf_folder(const std::string& folder, const config::Json& config,
                      const NamedTensors& parameters, const Mapping& mapping,
                      uint64_t max_shard = 5'000'000'000, bool replace = false);

}  // namespace blocks::weights
