// Hugging Face folders, the torch-free part: a folder holding config.json (and safetensors,
// read by framework/weights/hf_folder.h), its config as a blocks document, and the comparison
// of a model's architecture with the one a checkpoint was made for.
//
//   config::Diagnostics d;
//   if (hf::is_folder(path)) auto doc = hf::folder_document(path, blocks::registry(), d);
#pragma once

#include <optional>
#include <string>

#include "framework/config/document.h"
#include "framework/config/registry.h"

namespace blocks::hf {

// Whether `path` is a folder holding config.json.
bool is_folder(const std::string& path);

// `folder`/config.json.
std::string config_path(const std::string& folder);

// A scalar of a folder's config.json (model_type, max_position_embeddings...), or nullopt when
// the file or key is missing or not a scalar.
std::optional<std::string> config_value(const std::string& folder, const std::string& key);

// The folder's config.json converted as `blockc import hf` does, loaded and resolved with
// `options` (--set overrides). Null when anything is wrong; the problems are in `diagnostics`.
std::optional<config::Document> folder_document(const std::string& folder,
                                                const config::Registry& registry,
                                                config::Diagnostics& diagnostics,
                                                const config::LoadOptions& options = {});

// The architecture fields in which `model` and `checkpoint` differ, one
// "\n  PATH: model X, checkpoint Y" each; empty when they agree.
std::string architecture_differences(const config::Document& model,
                                     const config::Document& checkpoint);

}  // namespace blocks::hf
