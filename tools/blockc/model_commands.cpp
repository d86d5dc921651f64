#include "tools/blockc/model_commands.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "blocks/models/language_model_module.h"
#include "framework/build/dtype.h"
#include "blocks/models/summary.h"
#include "blocks/registry.h"
#include "framework/config/diff.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"
#include "framework/config/load.h"
#include "framework/hf/config.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "framework/weights/safetensors.h"

namespace blockc {

namespace {

// A one-line counter on stderr when it is a terminal; nothing otherwise.
std::function<void(size_t, size_t)> progress(const std::string& what) {
  if (!isatty(STDERR_FILENO)) return {};
  return [what](size_t done, size_t total) {
    std::fprintf(stderr, "\r%s %zu/%zu tensors", what.c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
  };
}

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

// The model_type of a Hugging Face folder's config.json, or empty.
std::string model_type_of(const std::string& folder) {
  blocks::config::Diagnostics diagnostics;
  auto raw = blocks::config::load_file((std::filesystem::path(folder) / "config.json").string(),
                                       diagnostics);
  const blocks::config::Node* type = raw && raw->is_mapping() ? raw->find("model_type") : nullptr;
  return type && type->is_scalar() ? type->text : "";
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

// Fills `model` from --weights (blocks' names, or --map's; a Hugging Face folder through its
// family's table) or the Hugging Face folder of --model.
void load_weights(const ModelArgs& args, const HfFolder* folder, blocks::Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : model.parameters) targets.emplace_back(p.name, p.tensor);
  std::string model_type = folder ? folder->model_type : "";
  std::vector<std::string> files;
  if (folder && args.weights.empty()) files = blocks::weights::checkpoint_files(args.model);
  for (const auto& w : args.weights) {
    if (is_hf_folder(w)) {
      const std::string type = model_type_of(w);
      if (!model_type.empty() && type != model_type)
        throw blocks::weights::MappingError("--weights " + w + " is a " + type +
                                            " checkpoint, the others " + model_type);
      model_type = type;
      for (auto& f : blocks::weights::checkpoint_files(w)) files.push_back(std::move(f));
    } else {
      files.push_back(w);
    }
  }
  if (!args.map.empty()) {
    blocks::weights::load_mapped(targets, files, blocks::weights::load_mapping_file(args.map),
                                 true, progress("loading"));
  } else if (!model_type.empty()) {
    blocks::weights::load_mapped(targets, files, blocks::weights::hf_mapping(model_type), true,
                                 progress("loading"));
  } else {
    blocks::weights::load_safetensors(targets, files, true, progress("loading"));
  }
}

std::optional<at::ScalarType> dtype_of(const std::string& name) {
  auto dtype = blocks::build::dtype_from_name(name);
  if (!dtype) spdlog::error("unknown dtype '{}' ({})", name, blocks::build::kDtypeNames);
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
  blocks::build::initialize(model.parameters, args.seed, blocks::build::module_registry(),
                            progress("initializing"));
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

int run_forward(const ModelArgs& args) {
  HfFolder folder;
  const bool hf = is_hf_folder(args.model);
  auto doc = hf ? load_hf(args, folder) : load(args);
  if (!doc) return 1;
  auto dtype = dtype_of(args.dtype);
  if (!dtype) return 2;
  if (args.weights.empty() && !args.seed_given && !hf) {
    spdlog::error("give --weights FILE (or --seed N for random weights)");
    return 2;
  }
  bool same = false;
  try {
    same = check_architecture(args, *doc);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  blocks::Model model = blocks::build_model(*doc->model, at::TensorOptions().dtype(*dtype));
  if (!same) {  // an error whatever the tensors; their problems, if any, are listed too
    try {
      load_weights(args, hf ? &folder : nullptr, model);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
    }
    return 1;
  }
  if (args.weights.empty() && args.seed_given) {
    blocks::build::initialize(model.parameters, args.seed);
  } else {
    try {
      load_weights(args, hf ? &folder : nullptr, model);
    } catch (const blocks::weights::MappingError& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
  }
  model.module->eval();
  const auto input = blocks::weights::SafetensorsFile::open(args.input);
  if (!input.contains("tokens")) {
    spdlog::error("{}: no tensor `tokens` (int64 [batch, sequence])", args.input);
    return 1;
  }
  blocks::ModelInput in;
  in.tokens = input.tensor("tokens");
  if (input.contains("attention_mask")) in.attention_mask = input.tensor("attention_mask");
  c10::InferenceMode inference;
  const at::Tensor logits = model.module->forward(in).logits.to(at::kFloat);
  blocks::weights::write_safetensors(args.output, {{"logits", logits}}, {{"format", "pt"}});
  spdlog::debug("wrote logits {} to {}", c10::str(logits.sizes()), args.output);
  return 0;
}

}  // namespace blockc
