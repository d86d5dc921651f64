// LoRA adapters apart from their base model, in two forms: blocks' own names (an adapters file:
// the adapters and the parts that train in full, safetensors) and a PEFT folder
// (adapter_config.json + adapter_model.safetensors in a Hugging Face family's names, as
// peft's PeftModel.save_pretrained writes it and PeftModel.from_pretrained reads it).
//
//   weights::write_peft_folder("out/adapter", trained, weights::hf_mapping("llama"));
//   weights::load_peft_folder(model_parameters, "out/adapter", weights::hf_mapping("llama"));
//
// PEFT keys: base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight [out, r] for
// each adapted module, base_model.model.<tensor> for each tensor of a module that trains in
// full (peft/utils/save_and_load.py get_peft_model_state_dict strips `modules_to_save.default`).
// Its scale is lora_alpha / r (rank_pattern and alpha_pattern per module), blocks' alpha / rank.
//
// A Hugging Face module that fuses several of blocks' linears (GPT-2's c_attn = query, key,
// value; Phi-3's qkv_proj, gate_up_proj) carries one adapter: blocks writes the adapters of its
// parts side by side, A stacked [k r, in] and B block-diagonal [out, k r], with rank k r and
// alpha k alpha in rank_pattern / alpha_pattern, which is exactly the sum of the parts. Reading,
// a fused adapter of rank r (one A shared by every part, B split by rows: what PEFT trains) or of
// rank k r in that block-diagonal layout loads into parts of rank r.
#pragma once

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/weights/load.h"
#include "framework/weights/mapping.h"

namespace blocks::weights {

// One parameter of a model, as these functions need it (nn::ParameterRecord without the build
// details, which this library does not see).
struct ModelTensor {
  std::string name;
  at::Tensor tensor;
  std::string role = "base";  // base, lora_a, lora_b
  bool trainable = true;
};

bool is_adapter(const ModelTensor& t);

// What an adapters file or folder holds of a model: its adapters and, when it has any, the
// base parameters that train (PEFT's modules_to_save). Empty when the model has no adapters.
std::vector<ModelTensor> adapter_part(const std::vector<ModelTensor>& model);

// LoRA's settings, one for the whole model.
struct LoraSettings {
  int64_t rank = 0;
  double alpha = 0.0;
};

struct PeftFolderOptions {
  LoraSettings lora;
  std::string base_model;               // base_model_name_or_path; empty: null
  std::string task_type = "CAUSAL_LM";  // empty: null
};

// Writes FOLDER/adapter_config.json and FOLDER/adapter_model.safetensors (each written
// atomically) for `model`'s adapters and fully trained parameters, in `mapping`'s names.
// Returns the number of tensors written. Throws MappingError when the model has no adapters,
// when an adapted linear maps to a checkpoint tensor that is not a module's `.weight`, or when a
// fused module's parts are not split by rows.
size_t write_peft_folder(const std::string& folder, const std::vector<ModelTensor>& model,
                         const Mapping& mapping, const PeftFolderOptions& options);

// adapter_config.json as far as loading needs it.
struct PeftConfig {
  LoraSettings lora;
  std::map<std::string, int64_t> rank_pattern;  // module name pattern -> r
  std::map<std::string, double> alpha_pattern;  // module name pattern -> lora_alpha
  std::vector<std::string> modules_to_save;
  std::string base_model;
  // The rank and alpha of `module` (full name, without base_model.model.), patterns matched as
  // peft's get_pattern_key does: the pattern matches the whole name or a dotted suffix of it.
  LoraSettings of(const std::string& module) const;
};

// Whether any of `files` (safetensors) holds adapters, in blocks' names (X.lora_a) or PEFT's
// (X.lora_A.weight). A base checkpoint holds none: the adapters then start from their
// initialization (B = 0, so the model computes the base).
bool holds_adapters(const std::vector<std::string>& files);

// Whether `path` is a folder holding adapter_config.json.
bool is_peft_folder(const std::string& path);

// Reads FOLDER/adapter_config.json. Throws MappingError naming the file for anything but a
// LoRA adapter blocks computes the same way: peft_type other than LORA, use_dora,
// use_rslora, bias other than none.
PeftConfig read_peft_config(const std::string& folder);

// Fills the adapters of `model` (and the parameters that train in full) from a PEFT folder
// whose base model maps through `mapping`. Strict: every adapter of the model must be in the
// folder, every tensor of the folder must go somewhere, each module's scale (alpha / r) must
// equal the model's, shapes must agree; all problems are listed in one LoadError before
// anything is copied.
LoadReport load_peft_folder(const std::vector<ModelTensor>& model, const std::string& folder,
                            const Mapping& mapping, const LoraSettings& lora);

// Fills them from an adapters file in blocks' names (blockc export --adapters-only), strictly.
LoadReport load_adapters_file(const std::vector<ModelTensor>& model, const std::string& file);

// Either: a PEFT folder (in the names of the Hugging Face family `family`, which must then be
// given) or an adapters file, onto a model with LoRA `lora`.
LoadReport load_adapters(const std::vector<ModelTensor>& model, const std::string& path,
                         const std::string& family, const LoraSettings& lora);

// The LoRA of a resolved model (Document::dump()["model"]): one rank and alpha for the whole
// model, as a PEFT folder holds. Throws MappingError when it has no `peft: lora` or parts with
// different ones.
LoraSettings lora_settings(const nlohmann::ordered_json& model);

}  // namespace blocks::weights
