#include "tools/blockc/model_commands.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <variant>

#include "blocks/models/model_module.h"
#include "framework/nn/dtype.h"
#include "blocks/models/summary.h"
#include "blocks/registry.h"
#include "framework/config/codec.h"
#include "framework/config/diff.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"
#include "framework/config/load.h"
#include "framework/hf/config.h"
#include "framework/hf/export_config.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "framework/weights/safetensors.h"
#include "tools/blockc/progress.h"

namespace blockc {

namespace {

std::optional<blocks::config::Document> load(const ModelArgs& args) {
  blocks::config::Diagnostics diagnostics;
  blocks::config::LoadOptions options;
  options.sets = args.sets;
  auto doc = blocks::config::load_document(args.model, blocks::registry(), diagnostics, options);
  std::cerr << diagnostics.format();
  return doc;
}

// A Hugging Face folder: config.json converted (blockc import hf), its checkpoint and mapping.
struct HfFolder {
  std::string model_type;
  std::vector<std::string> files;
};

bool is_hf_folder(const std::string& path) {
  return std::filesystem::is_directory(path) &&
         std::filesystem::exists(std::filesystem::path(path) / "config.json");
}

std::optional<blocks::config::Document> load_hf(const ModelArgs& args, HfFolder& folder) {
  blocks::config::Diagnostics diagnostics;
  const std::string config = (std::filesystem::path(args.model) / "config.json").string();
  auto yaml = blocks::hf::import_yaml(args.model, diagnostics);
  auto raw = blocks::config::load_file(config, diagnostics);
  if (!yaml || !raw) {
    std::cerr << diagnostics.format();
    return std::nullopt;
  }
  folder.model_type = raw->find("model_type")->text;  // import_yaml checked it
  blocks::config::LoadOptions options;
  options.sets = args.sets;
  auto doc = blocks::config::load_document_text(*yaml, config, blocks::registry(), diagnostics,
                                                options);
  std::cerr << diagnostics.format();
  return doc;
}

// A scalar of a Hugging Face folder's config.json (model_type, max_position_embeddings...), or
// nullopt when the file or key is missing or not a scalar.
std::optional<std::string> config_value(const std::string& folder, const std::string& key) {
  blocks::config::Diagnostics diagnostics;
  auto raw = blocks::config::load_file((std::filesystem::path(folder) / "config.json").string(),
                                       diagnostics);
  const blocks::config::Node* n = raw && raw->is_mapping() ? raw->find(key) : nullptr;
  if (!n || !n->is_scalar()) return std::nullopt;
  return n->text;
}

// A document from its JSON dump (or a converted config.json); problems go to stderr.
std::optional<blocks::config::Document> document_of(const blocks::config::Json& json,
                                                    const std::string& name) {
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::config::load_document_text(blocks::config::to_yaml(json), name,
                                                blocks::registry(), diagnostics);
  if (!doc) std::cerr << diagnostics.format();
  return doc;
}

// Whether the checkpoint's config (`checkpoint`, described by `what`) has the model's
// architecture; otherwise logs every architecture difference (path, model, checkpoint).
bool same_architecture(const blocks::config::Document& model,
                       const blocks::config::Document& checkpoint, const std::string& what) {
  std::string listed;
  for (const auto& d : blocks::config::diff(model, checkpoint)) {
    if (d.hint != blocks::config::Hint::architecture) continue;
    listed += "\n  " + d.path + ": model " + (d.only_after ? "(absent)" : d.before.dump()) +
              ", checkpoint " + (d.only_before ? "(absent)" : d.after.dump());
  }
  if (listed.empty()) return true;
  spdlog::error("the model's architecture differs from the checkpoint's ({}):{}", what, listed);
  return false;
}

// The configs the weights were made for, compared with `doc` before anything loads: a Hugging
// Face folder's config.json (converted as `blockc import hf` does) or the "blocks_config"
// metadata `blockc init` writes. False (logged) on a difference or an unreadable config.
bool check_architecture(const ModelArgs& args, const blocks::config::Document& doc) {
  for (const auto& w : args.weights) {
    if (is_hf_folder(w)) {
      blocks::config::Diagnostics diagnostics;
      auto json = blocks::hf::import_file(w, diagnostics);
      if (!json) {
        std::cerr << diagnostics.format();
        return false;
      }
      const std::string config = (std::filesystem::path(w) / "config.json").string();
      auto checkpoint = document_of(*json, config);
      if (!checkpoint || !same_architecture(doc, *checkpoint, config)) return false;
    } else if (std::filesystem::is_regular_file(w)) {
      const auto file = blocks::weights::SafetensorsFile::open(w);
      auto it = file.metadata().find("blocks_config");
      if (it == file.metadata().end()) continue;
      blocks::config::Json json;
      try {
        json = blocks::config::Json::parse(it->second);
      } catch (const std::exception& e) {
        spdlog::error("{}: metadata blocks_config is not JSON: {}", w, e.what());
        return false;
      }
      auto checkpoint = document_of(json, w + ":blocks_config");
      if (!checkpoint || !same_architecture(doc, *checkpoint, w)) return false;
    }
  }
  return true;
}

// Where the weights come from: files, and the Hugging Face family naming them (empty: blocks'
// names, or --map's).
struct Sources {
  std::vector<std::string> files;
  std::string model_type;
};

// --weights (files, or Hugging Face folders), else the Hugging Face folder of --model.
Sources sources_of(const ModelArgs& args, const HfFolder* folder) {
  Sources sources;
  sources.model_type = folder ? folder->model_type : "";
  if (folder && args.weights.empty()) sources.files = blocks::weights::checkpoint_files(args.model);
  for (const auto& w : args.weights) {
    if (is_hf_folder(w)) {
      const std::string type = config_value(w, "model_type").value_or("");
      if (!sources.model_type.empty() && type != sources.model_type)
        throw blocks::weights::MappingError("--weights " + w + " is a " + type +
                                            " checkpoint, the others " + sources.model_type);
      sources.model_type = type;
      for (auto& f : blocks::weights::checkpoint_files(w)) sources.files.push_back(std::move(f));
    } else {
      sources.files.push_back(w);
    }
  }
  return sources;
}

// Fills `model` from `sources` (through --map, the family's table, or by blocks' names).
void load_weights(const ModelArgs& args, const Sources& sources, blocks::Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : model.parameters) targets.emplace_back(p.name, p.tensor);
  if (!args.map.empty()) {
    blocks::weights::load_mapped(targets, sources.files,
                                 blocks::weights::load_mapping_file(args.map), true,
                                 progress_bar("loading"));
  } else if (!sources.model_type.empty()) {
    blocks::weights::load_mapped(targets, sources.files,
                                 blocks::weights::hf_mapping(sources.model_type), true,
                                 progress_bar("loading"));
  } else {
    blocks::weights::load_safetensors(targets, sources.files, true, progress_bar("loading"));
  }
}

// The dtype (of those models build in) most of the checkpoint's bytes are in (float32 when none).
at::ScalarType checkpoint_dtype(const std::vector<std::string>& files) {
  std::map<at::ScalarType, uint64_t> bytes;
  for (const auto& path : files) {
    const auto file = blocks::weights::SafetensorsFile::open(path);
    for (const auto& info : file.tensors()) {
      const auto type = blocks::weights::scalar_type(info.dtype);
      if (blocks::nn::dtype_to_name(type)) bytes[type] += info.end - info.begin;
    }
  }
  at::ScalarType best = at::kFloat;
  uint64_t most = 0;
  for (const auto& [type, n] : bytes)
    if (n > most) best = type, most = n;
  return best;
}

std::optional<at::ScalarType> dtype_of(const std::string& name) {
  auto dtype = blocks::nn::dtype_from_name(name);
  if (!dtype) spdlog::error("unknown dtype '{}' ({})", name, blocks::nn::dtype_names());
  return dtype;
}


}  // namespace

int run_summary(const ModelArgs& args) {
  auto doc = load(args);
  if (!doc) return 1;
  // The meta device: shapes without storage, so 70B-class configs cost no weight memory.
  const blocks::Model model =
      blocks::build_model(*doc->model, at::TensorOptions().device(at::kMeta));
  blocks::SummaryOptions options;
  options.depth = args.depth;
  options.context = args.context;
  options.title = args.model;
  std::cout << blocks::summarize(*doc->model, model.parameters, options);
  return 0;
}

int run_init(const ModelArgs& args) {
  auto doc = load(args);
  if (!doc) return 1;
  auto dtype = dtype_of(args.dtype);
  if (!dtype) return 2;
  blocks::Model model = blocks::build_model(*doc->model, at::TensorOptions().dtype(*dtype));
  spdlog::debug("initializing {} tensors with seed {}", model.parameters.size(), args.seed);
  blocks::nn::initialize(model.parameters, args.seed, blocks::nn::module_registry(),
                            progress_bar("initializing"));
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : model.parameters) tensors.emplace_back(p.name, p.tensor.detach());
  // The resolved document rides along, so that `blockc forward` can check the architecture.
  blocks::weights::write_safetensors(args.output, tensors,
                                     {{"format", "pt"},
                                      {"seed", std::to_string(args.seed)},
                                      {"producer", "blockc init"},
                                      {"blocks_config", doc->dump().dump()}});
  spdlog::info("wrote {} tensors to {}", tensors.size(), args.output);
  return 0;
}

namespace {

// A model built from --model and filled from --weights, the Hugging Face folder of --model or
// --seed, after checking the checkpoint's architecture against the model's.
struct Prepared {
  blocks::config::Document doc;
  blocks::Model model;
  std::string model_type;  // the Hugging Face family of --model or --weights, if any
};

// Whether the weights have a source (logged otherwise: a usage error).
bool weights_given(const ModelArgs& args) {
  if (!args.weights.empty() || args.seed_given || is_hf_folder(args.model)) return true;
  spdlog::error("give --weights FILE (or --seed N for random weights)");
  return false;
}

// The prepared model, or the exit code (problems logged). Without --dtype the model is float32,
// or with `checkpoint_dtype`, in the dtype of most of the checkpoint's bytes (export keeps a
// bfloat16 checkpoint bfloat16).
std::variant<Prepared, int> prepare(const ModelArgs& args, bool keep_checkpoint_dtype) {
  HfFolder folder;
  const bool hf = is_hf_folder(args.model);
  auto doc = hf ? load_hf(args, folder) : load(args);
  if (!doc) return 1;
  if (!weights_given(args)) return 2;
  const bool random = args.weights.empty() && args.seed_given;
  Sources sources;
  try {
    if (!random) sources = sources_of(args, hf ? &folder : nullptr);
    // A checkpoint made for another architecture is refused before anything loads: its
    // tensors' problems would only repeat the difference.
    if (!check_architecture(args, *doc)) return 1;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  std::optional<at::ScalarType> dtype;
  if (args.dtype_given || random || !keep_checkpoint_dtype)
    dtype = dtype_of(args.dtype);
  else
    dtype = checkpoint_dtype(sources.files);
  if (!dtype) return 2;
  spdlog::debug("building in {}", c10::toString(*dtype));
  blocks::Model model = blocks::build_model(*doc->model, at::TensorOptions().dtype(*dtype));
  if (random) {
    blocks::nn::initialize(model.parameters, args.seed, blocks::nn::module_registry(),
                              progress_bar("initializing"));
  } else {
    try {
      load_weights(args, sources, model);
    } catch (const blocks::weights::MappingError& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
  }
  return Prepared{std::move(*doc), std::move(model), sources.model_type};
}

std::vector<std::pair<std::string, at::Tensor>> named(const blocks::Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : model.parameters) out.emplace_back(p.name, p.tensor.detach());
  return out;
}

// Writes `tensors` to `folder` as Hugging Face does: model.safetensors, or shards of at most
// `max_shard` bytes (a tensor larger than that gets a shard of its own) named
// model-0000K-of-0000N.safetensors with model.safetensors.index.json.
void write_shards(const std::filesystem::path& folder,
                  const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                  uint64_t max_shard) {
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
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (shards.size() == 1) {
    blocks::weights::write_safetensors((folder / "model.safetensors").string(), tensors, metadata);
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}},
                          {"weight_map", nlohmann::json::object()}};
  for (size_t k = 0; k < shards.size(); ++k) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    std::vector<std::pair<std::string, at::Tensor>> part;
    for (size_t i : shards[k]) {
      part.push_back(tensors[i]);
      index["weight_map"][tensors[i].first] = name;
    }
    blocks::weights::write_safetensors((folder / name).string(), part, metadata);
  }
  std::ofstream((folder / "model.safetensors.index.json").string()) << index.dump(2) << "\n";
}

}  // namespace

std::optional<uint64_t> parse_size(const std::string& text) {
  static const std::regex pattern(R"(\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*)",
                                  std::regex::icase);
  std::smatch m;
  if (!std::regex_match(text, m, pattern)) return std::nullopt;
  double value = std::stod(m[1]);
  std::string unit = m[2];
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!unit.empty() && unit != "B") {
    const bool binary = unit.size() == 3;
    const double base = binary ? 1024.0 : 1000.0;
    const int power = std::string("KMGT").find(unit[0]) + 1;
    for (int i = 0; i < power; ++i) value *= base;
  }
  if (value < 1) return std::nullopt;
  return static_cast<uint64_t>(value);
}

int run_forward(const ModelArgs& args) {
  if (!weights_given(args)) return 2;
  // The input is read before the weights: a wrong path should not wait for a long load. Every
  // tensor of the file is an input by its name; the model refuses names it does not take.
  const auto file = blocks::weights::SafetensorsFile::open(args.input);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& info : file.tensors()) tensors[info.name] = file.tensor(info.name);
  blocks::ModelInput in = blocks::ModelInput::from_tensors(std::move(tensors));
  in.hidden_states = args.hidden_states;
  auto prepared = prepare(args, /*keep_checkpoint_dtype=*/false);
  if (auto* code = std::get_if<int>(&prepared)) return *code;
  blocks::Model& model = std::get<Prepared>(prepared).model;
  model.module->eval();
  c10::InferenceMode inference;
  blocks::ModelOutput out = model.module->forward(in);
  std::vector<std::pair<std::string, at::Tensor>> written = {{"logits", out.logits.to(at::kFloat)}};
  for (const auto& name : args.hidden_states)
    written.emplace_back("hidden." + name, out.hidden_states.at(name).to(at::kFloat));
  blocks::weights::write_safetensors(args.output, written, {{"format", "pt"}});
  spdlog::debug("wrote logits {} to {}", c10::str(out.logits.sizes()), args.output);
  return 0;
}

int run_export(const ModelArgs& args) {
  const auto max_shard = parse_size(args.max_shard_size);
  if (!max_shard) {
    spdlog::error("--max-shard-size '{}': expected a size such as 5GB, 500MB or 2GiB",
                  args.max_shard_size);
    return 2;
  }
  auto prepared = prepare(args, /*keep_checkpoint_dtype=*/true);
  if (auto* code = std::get_if<int>(&prepared)) return *code;
  Prepared& p = std::get<Prepared>(prepared);
  if (args.to == "blocks") {
    blocks::weights::write_safetensors(args.output, named(p.model),
                                       {{"format", "pt"},
                                        {"producer", "blockc export"},
                                        {"blocks_config", p.doc.dump().dump()}});
    spdlog::info("wrote {} tensors to {}", p.model.parameters.size(), args.output);
    return 0;
  }
  // A Hugging Face folder: config.json for the family, tensors in its names.
  blocks::config::Diagnostics diagnostics;
  blocks::hf::ExportOptions options;
  options.model_type = args.model_type.empty() ? p.model_type : args.model_type;
  options.torch_dtype =
      blocks::nn::dtype_to_name(p.model.parameters.front().tensor.scalar_type()).value();
  if (args.max_positions > 0) options.max_position_embeddings = args.max_positions;
  // Rotary models keep no position table: the context length comes from the folder the
  // weights came from, if any.
  for (const auto& source : [&] {
         std::vector<std::string> all = args.weights;
         all.push_back(args.model);
         return all;
       }())
    if (is_hf_folder(source) && !options.max_position_embeddings)
      if (auto n = config_value(source, "max_position_embeddings"))
        options.max_position_embeddings = blocks::config::parse_integer(*n);
  auto config = blocks::hf::export_config(p.doc.dump(), options, diagnostics);
  if (!config) {
    std::cerr << diagnostics.format();
    spdlog::error("the model cannot be written as a Hugging Face {} config",
                  options.model_type.empty() ? "llama, mistral, mixtral, qwen2 or gpt2"
                                             : options.model_type);
    return 1;
  }
  const std::string model_type = (*config)["model_type"].get<std::string>();
  const auto tensors = blocks::weights::export_mapped(named(p.model),
                                                      blocks::weights::hf_mapping(model_type));
  const std::filesystem::path folder(args.output);
  std::filesystem::create_directories(folder);
  write_shards(folder, tensors, *max_shard);
  std::ofstream((folder / "config.json").string()) << config->dump(2) << "\n";
  spdlog::info("wrote {} tensors and a {} config.json to {}", tensors.size(), model_type,
               args.output);
  return 0;
}

}  // namespace blockc
