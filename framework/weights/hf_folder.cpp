// Hugging Face folders with tensors: sources, architecture checks, dtype, loading and saving.
#include "framework/weights/hf_folder.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "framework/config/diff.h"
#include "framework/config/emit.h"
#include "framework/config/load.h"
#include "framework/hf/folder.h"
#include "framework/hf/llava.h"
#include "framework/io/files.h"
#include "framework/nn/dtype.h"  // header-only: the one table of dtype names
#include "framework/weights/safetensors.h"

namespace blocks::weights {

namespace {

// A document from its JSON dump; problems thrown as ConfigError.
config::Document document_of(const config::Json& json, const std::string& name,
                             const config::Registry& registry) {
  config::Diagnostics diagnostics;
  auto doc = config::load_document_text(config::to_yaml(json), name, registry, diagnostics);
  if (!doc) throw config::ConfigError(diagnostics);
  return std::move(*doc);
}

void same_architecture(const config::Document& model, const config::Document& checkpoint,
                       const std::string& what) {
  const std::string listed = hf::architecture_differences(model, checkpoint);
  if (!listed.empty())
    throw ArchitectureError("the model's architecture differs from the checkpoint's (" + what +
                            "):" + listed);
}

}  // namespace

void check_component_architecture(const config::Document& model, const std::string& component,
                                  const std::string& folder, const config::Registry& registry) {
  if (!hf::is_folder(folder)) return;
  config::Diagnostics diagnostics;
  auto checkpoint = hf::folder_document(folder, registry, diagnostics);
  if (!checkpoint) throw config::ConfigError(diagnostics);
  const std::string kind = checkpoint->model ? checkpoint->model->type().name : "";
  // The component's config path, and where the same part sits in the checkpoint's model.
  std::string mine = "model." + component, theirs = "model";
  const config::Json dumped = model.dump()["model"];
  const config::Json* at = &dumped;
  for (size_t start = 0; at && start <= component.size();) {
    const size_t dot = std::min(component.find('.', start), component.size());
    const std::string key = component.substr(start, dot - start);
    at = at->is_object() && at->contains(key) ? &(*at)[key] : nullptr;
    start = dot + 1;
  }
  if (!at || !at->is_object()) return;
  const bool encoder = at->contains("encoder") && kind == "encoder_model";
  const bool decoder = at->value("type", "") == "language_model" && kind == "language_model";
  if (!encoder && !decoder) return;
  if (encoder) {
    mine += ".encoder";
    theirs += ".encoder";
  }
  static const std::set<std::string> chosen = {"feature_layers", "drop_class_token",
                                               "body.num_layers"};
  auto below = [&](const config::Document& doc, const std::string& prefix) {
    std::map<std::string, config::Json> out;
    for (const auto& leaf : config::leaves(doc)) {
      if (leaf.hint != config::Hint::architecture) continue;
      if (leaf.path.compare(0, prefix.size() + 1, prefix + ".") != 0) continue;
      const std::string relative = leaf.path.substr(prefix.size() + 1);
      if (encoder && chosen.count(relative.substr(0, relative.find('['))) ) continue;
      out[relative] = leaf.value;
    }
    return out;
  };
  const auto a = below(model, mine), b = below(*checkpoint, theirs);
  std::string listed;
  for (const auto& [path, value] : a) {
    auto it = b.find(path);
    if (it == b.end())
      listed += "\n  " + mine + "." + path + ": model " + value.dump() + ", checkpoint (absent)";
    else if (it->second != value)
      listed += "\n  " + mine + "." + path + ": model " + value.dump() + ", checkpoint " +
                it->second.dump();
  }
  for (const auto& [path, value] : b)
    if (!a.count(path))
      listed += "\n  " + mine + "." + path + ": model (absent), checkpoint " + value.dump();
  if (!listed.empty())
    throw ArchitectureError("--weights " + component + "=" + folder + ": the component's " +
                            "architecture differs from the checkpoint's (" +
                            hf::config_path(folder) + "):" + listed);
}

std::string hf_text_type(const std::string& folder) {
  config::Diagnostics diagnostics;
  const auto raw = config::load_file(hf::config_path(folder), diagnostics);
  return raw ? hf::llava_text_type(*raw) : "llama";
}

WeightSources weight_sources(const std::vector<std::string>& weights,
                             const std::string& model_type) {
  WeightSources sources;
  sources.model_type = model_type;
  for (const auto& w : weights) {
    if (!hf::is_folder(w)) {
      sources.files.push_back(w);
      continue;
    }
    const std::string type = hf::config_value(w, "model_type").value_or("");
    if (!sources.model_type.empty() && type != sources.model_type)
      throw MappingError("--weights " + w + " is a " + type + " checkpoint, the others " +
                         sources.model_type);
    sources.model_type = type;
    if (type == "llava") sources.text_type = hf_text_type(w);
    std::string note;
    for (auto& f : checkpoint_files(w, &note)) sources.files.push_back(std::move(f));
    if (!note.empty()) sources.notes.push_back(note);
  }
  return sources;
}

void check_architecture(const config::Document& model, const std::vector<std::string>& weights,
                        const config::Registry& registry) {
  for (const auto& w : weights) {
    if (hf::is_folder(w)) {
      config::Diagnostics diagnostics;
      auto checkpoint = hf::folder_document(w, registry, diagnostics);
      if (!checkpoint) throw config::ConfigError(diagnostics);
      same_architecture(model, *checkpoint, hf::config_path(w));
    } else if (std::filesystem::is_regular_file(w)) {
      const auto file = SafetensorsFile::open(w);
      auto it = file.metadata().find("blocks_config");
      if (it == file.metadata().end()) continue;
      config::Json json;
      try {
        json = config::Json::parse(it->second);
      } catch (const std::exception& e) {
        throw ArchitectureError(w + ": metadata blocks_config is not JSON: " + e.what());
      }
      same_architecture(model, document_of(json, w + ":blocks_config", registry), w);
    }
  }
}

at::ScalarType checkpoint_dtype(const std::vector<std::string>& files) {
  std::map<at::ScalarType, uint64_t> bytes;
  for (const auto& path : files) {
    const auto file = SafetensorsFile::open(path);
    for (const auto& info : file.tensors()) {
      const auto type = scalar_type(info.dtype);
      // The dtypes models build in.
      if (nn::dtype_to_name(type)) bytes[type] += info.end - info.begin;
    }
  }
  at::ScalarType best = at::kFloat;
  uint64_t most = 0;
  for (const auto& [type, n] : bytes)
    if (n > most) best = type, most = n;
  return best;
}

LoadReport load_hf_folder(const NamedTensors& parameters, const std::string& folder,
                          const std::function<void(size_t, size_t)>& progress) {
  const auto type = hf::config_value(folder, "model_type");
  if (!type) throw MappingError(hf::config_path(folder) + ": no model_type");
  return load_mapped(parameters, checkpoint_files(folder), hf_mapping(*type), true, progress);
}

namespace {

namespace fs = std::filesystem;

// A file of a Hugging Face checkpoint (what replacing one removes): config.json, the single
// file, the index, and shards model-0000K-of-0000N.safetensors.
bool checkpoint_file(const std::string& name) {
  if (name == "config.json" || name == "model.safetensors" ||
      name == "model.safetensors.index.json")
    return true;
  // model-KKKKK-of-NNNNN.safetensors: 32 characters, digits at 6-10 and 15-19.
  const auto digits = [&](size_t at) {
    return std::all_of(name.begin() + at, name.begin() + at + 5,
                       [](char c) { return c >= '0' && c <= '9'; });
  };
  return name.size() == 32 && name.compare(0, 6, "model-") == 0 && digits(6) &&
         name.compare(11, 4, "-of-") == 0 && digits(15) &&
         name.compare(20, 12, ".safetensors") == 0;
}

void remove_file(const fs::path& path) {
  std::error_code error;
  fs::remove(path, error);
  if (error) throw io::FileError(path.string() + ": cannot remove: " + error.message());
}

}  // namespace

std::vector<std::string> write_shards(const std::string& folder_name, const NamedTensors& tensors,
                                      uint64_t max_shard) {
  const fs::path folder(folder_name);
  fs::create_directories(folder);
  std::vector<std::vector<size_t>> shards;
  uint64_t size = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t bytes = tensors[i].second.nbytes();
    if (shards.empty() || (size > 0 && size + bytes > max_shard)) shards.emplace_back(), size = 0;
    shards.back().push_back(i);
    size += bytes;
    total += bytes;
  }
  if (shards.empty()) shards.emplace_back();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};  // transformers needs it
  if (shards.size() == 1) {
    write_safetensors((folder / "model.safetensors").string(), tensors, metadata);
    return {"model.safetensors"};
  }
  // A model.safetensors left from before would win over the index (as in transformers).
  remove_file(folder / "model.safetensors");
  std::vector<std::string> written;
  nlohmann::json index = {{"metadata", {{"total_size", total}}},
                          {"weight_map", nlohmann::json::object()}};
  for (size_t k = 0; k < shards.size(); ++k) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    NamedTensors part;
    for (size_t i : shards[k]) {
      part.push_back(tensors[i]);
      index["weight_map"][tensors[i].first] = name;
    }
    write_safetensors((folder / name).string(), part, metadata);
    written.push_back(name);
  }
  io::write_file((folder / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  written.push_back("model.safetensors.index.json");
  return written;
}

std::vector<std::string> check_hf_output_folder(const std::string& folder, bool replace) {
  io::check_output_folder(folder);
  std::vector<std::string> old, others;
  if (fs::exists(folder))
    for (const auto& entry : fs::directory_iterator(folder)) {
      const std::string name = entry.path().filename().string();
      (checkpoint_file(name) ? old : others).push_back(name);
    }
  std::sort(old.begin(), old.end());
  std::sort(others.begin(), others.end());
  if (!replace && (!old.empty() || !others.empty())) {
    std::vector<std::string> all = old;
    all.insert(all.end(), others.begin(), others.end());
    std::string listed;
    for (size_t i = 0; i < all.size() && i < 3; ++i) listed += (i ? ", " : "") + all[i];
    if (all.size() > 3) listed += ", ...";
    throw io::FileError(folder + ": the output folder is not empty (" + listed +
                        "); ask to replace its checkpoint (blockc export --replace)");
  }
  return old;
}

size_t save_hf_folder(const std::string& folder, const config::Json& config,
                      const NamedTensors& parameters, uint64_t max_shard, bool replace) {
  return save_hf_folder(folder, config, parameters,
                        hf_mapping(config.at("model_type").get<std::string>()), max_shard,
                        replace);
}

size_t save_hf_folder(const std::string& folder, const config::Json& config,
                      const NamedTensors& parameters, const Mapping& mapping,
                      uint64_t max_shard, bool replace) {
  const std::vector<std::string> old = check_hf_output_folder(folder, replace);
  // Everything that can fail on the model's side fails before the folder is touched.
  const auto tensors = export_mapped(parameters, mapping);
  std::vector<std::string> written = write_shards(folder, tensors, max_shard);
  io::write_file(hf::config_path(folder), config.dump(2) + "\n");
  written.push_back("config.json");
  // What is left of the old checkpoint (other shard counts, an index beside a single file) goes;
  // files that are not a checkpoint's (a tokenizer, a README) stay.
  for (const auto& name : old)
    if (std::find(written.begin(), written.end(), name) == written.end())
      remove_file(fs::path(folder) / name);
  return tensors.size();
}

}  // namespace blocks::weights
