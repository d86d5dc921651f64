#include "tools/blockc/model_commands.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "blocks/models/language_model_module.h"
#include "blocks/models/summary.h"
#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/config/load.h"
#include "framework/hf/config.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "framework/weights/safetensors.h"

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

// Fills `model` from --weights (blocks' names, or --map's) or the Hugging Face folder.
void load_weights(const ModelArgs& args, const HfFolder* folder, blocks::Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : model.parameters) targets.emplace_back(p.name, p.tensor);
  const bool from_folder = folder && args.weights.empty();
  const auto files = from_folder ? blocks::weights::checkpoint_files(args.model) : args.weights;
  if (!args.map.empty()) {
    blocks::weights::load_mapped(targets, files, blocks::weights::load_mapping_file(args.map));
  } else if (folder) {
    blocks::weights::load_mapped(targets, files, blocks::weights::hf_mapping(folder->model_type));
  } else {
    blocks::weights::load_safetensors(targets, files);
  }
}

std::optional<at::ScalarType> dtype_of(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  if (name == "float64") return at::kDouble;
  spdlog::error("unknown dtype '{}' (float32, bfloat16, float16, float64)", name);
  return std::nullopt;
}

// A one-line counter on stderr when it is a terminal; nothing otherwise.
std::function<void(size_t, size_t)> progress(const std::string& what) {
  if (!isatty(STDERR_FILENO)) return {};
  return [what](size_t done, size_t total) {
    std::fprintf(stderr, "\r%s %zu/%zu tensors", what.c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
  };
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
  blocks::weights::write_safetensors(args.output, tensors,
                                     {{"format", "pt"}, {"seed", std::to_string(args.seed)},
                                      {"producer", "blockc init"}});
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
  blocks::Model model = blocks::build_model(*doc->model, at::TensorOptions().dtype(*dtype));
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
