#include "tools/blockc/model_commands.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "blocks/models/language_model_module.h"
#include "blocks/models/summary.h"
#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/weights/load.h"
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
  auto doc = load(args);
  if (!doc) return 1;
  auto dtype = dtype_of(args.dtype);
  if (!dtype) return 2;
  if (args.weights.empty() && !args.seed_given) {
    spdlog::error("give --weights FILE (or --seed N for random weights)");
    return 2;
  }
  blocks::Model model = blocks::build_model(*doc->model, at::TensorOptions().dtype(*dtype));
  if (args.weights.empty()) {
    blocks::build::initialize(model.parameters, args.seed);
  } else {
    std::vector<std::pair<std::string, at::Tensor>> targets;
    for (const auto& p : model.parameters) targets.emplace_back(p.name, p.tensor);
    blocks::weights::load_safetensors(targets, args.weights);
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
