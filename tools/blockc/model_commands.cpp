#include "tools/blockc/model_commands.h"
#include "tools/blockc/model_prepare.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <variant>

#include "blocks/linear/linear_module.h"
#include "blocks/models/early_fusion_module.h"
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
#include "framework/hf/family.h"
#include "framework/hf/folder.h"
#include "framework/io/files.h"
#include "framework/media/image.h"
#include "framework/nn/model_tensors.h"
#include "framework/weights/adapters.h"
#include "framework/weights/hf_folder.h"
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

// A Hugging Face folder's document (converted as `blockc import hf` does) and its family.
std::optional<blocks::config::Document> load_hf(const ModelArgs& args, std::string& model_type) {
  blocks::config::Diagnostics diagnostics;
  blocks::config::LoadOptions options;
  options.sets = args.sets;
  auto doc = blocks::hf::folder_document(args.model, blocks::registry(), diagnostics, options);
  std::cerr << diagnostics.format();
  if (doc) model_type = blocks::hf::config_value(args.model, "model_type").value_or("");
  return doc;
}

// The configs the weights were made for, compared with `doc` before anything loads. False
// (logged) on a difference or an unreadable config.
bool check_architecture(const ModelArgs& args, const blocks::config::Document& doc) {
  try {
    blocks::weights::check_architecture(doc, args.weights, blocks::registry());
    return true;
  } catch (const blocks::config::ConfigError& e) {
    std::cerr << e.diagnostics().format();
  } catch (const blocks::weights::ArchitectureError& e) {
    spdlog::error("{}", e.what());
  }
  return false;
}

// --weights (files, or Hugging Face folders), else the Hugging Face folder of --model.
blocks::weights::WeightSources sources_of(const ModelArgs& args, const std::string& hf_type) {
  auto sources = blocks::weights::weight_sources(args.weights, hf_type);
  if (!hf_type.empty() && args.weights.empty()) {
    if (hf_type == "llava") sources.text_type = blocks::weights::hf_text_type(args.model);
    std::string note;
    sources.files = blocks::weights::checkpoint_files(args.model, &note);
    if (!note.empty()) sources.notes.push_back(note);
  }
  for (const auto& note : sources.notes) spdlog::warn("{}", note);
  return sources;
}

// Fills `model` from `sources` (through --map, the family's table, or by blocks' names).
// A base checkpoint (one without adapters) leaves a LoRA model's adapters to --seed: B = 0, so
// the model computes the base until --adapters or training fills them.
void load_weights(const ModelArgs& args, const blocks::weights::WeightSources& sources,
                  const blocks::config::Document& doc, blocks::Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  blocks::nn::ParameterTable adapters;
  const bool base_only = !blocks::weights::holds_adapters(sources.files);
  for (const auto& p : model.parameters)
    if (base_only && (p.role == "lora_a" || p.role == "lora_b"))
      adapters.push_back(p);
    else
      targets.emplace_back(p.name, p.tensor);
  if (!adapters.empty()) {
    blocks::nn::initialize(adapters, args.seed);
    spdlog::info("{} adapter tensors from seed {} (the checkpoint holds none)", adapters.size(),
                 args.seed);
  }
  if (!args.map.empty()) {
    blocks::weights::load_mapped(targets, sources.files,
                                 blocks::weights::load_mapping_file(args.map.front()), true,
                                 progress_bar("loading"));
  } else if (!sources.model_type.empty()) {
    std::vector<std::string> notes;
    const auto mapping = blocks::weights::hf_mapping(sources.model_type, doc.dump()["model"],
                                                     sources.text_type, &notes);
    for (const auto& note : notes) spdlog::info("{}", note);
    blocks::weights::load_mapped(targets, sources.files, mapping, true, progress_bar("loading"));
  } else {
    blocks::weights::load_safetensors(targets, sources.files, true, progress_bar("loading"));
  }
}

// Bytes this process can still get: MemAvailable plus free swap (Linux), or nothing known.
std::optional<uint64_t> available_memory() {
  std::ifstream in("/proc/meminfo");
  uint64_t available = 0, swap = 0;
  bool found = false;
  for (std::string key; in >> key;) {
    uint64_t kib = 0;
    in >> kib;
    if (key == "MemAvailable:") available = kib * 1024, found = true;
    if (key == "SwapFree:") swap = kib * 1024;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  if (!found) return std::nullopt;
  return available + swap;
}

// Builds `doc`'s model in `dtype` after checking that its parameters fit in memory: a model
// larger than the machine is a clear error, not an allocation failure halfway through.
blocks::Model build_checked(const blocks::config::Document& doc, at::ScalarType dtype) {
  const auto count = blocks::config::count_parameters(*doc.model);
  const double bytes = static_cast<double>(count.total) * static_cast<double>(c10::elementSize(dtype));
  if (const auto available = available_memory(); available && bytes > *available) {
    char text[160];
    std::snprintf(text, sizeof text,
                  "the model's parameters need %.2f GB in %s, more than the %.2f GB of memory "
                  "this machine has available",
                  bytes / 1e9, c10::toString(dtype), static_cast<double>(*available) / 1e9);
    throw blocks::nn::BuildError(text);
  }
  return blocks::build_model(*doc.model, at::TensorOptions().dtype(dtype));
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
  blocks::SummaryOptions options;
  options.depth = args.depth;
  options.context = args.context;
  options.title = args.model;
  std::cout << blocks::summarize(*doc->model, options);
  return 0;
}

int run_init(const ModelArgs& args) {
  blocks::io::check_output(args.output);
  auto doc = load(args);
  if (!doc) return 1;
  auto dtype = dtype_of(args.dtype);
  if (!dtype) return 2;
  blocks::Model model = build_checked(*doc, *dtype);
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

// Whether the weights have a source (logged otherwise: a usage error).
bool weights_given(const ModelArgs& args) {
  if (!args.weights.empty() || args.seed_given || blocks::hf::is_folder(args.model)) return true;
  spdlog::error("give --weights FILE (or --seed N for random weights)");
  return false;
}

// `--weights COMPONENT=PATH`: a component (a module path such as `decoder` or
// `encoders.image`) and its checkpoint. A value naming an existing file or folder is a whole
// model's checkpoint, whatever characters it holds.
std::optional<std::pair<std::string, std::string>> component_source(const std::string& value) {
  std::error_code ec;
  if (std::filesystem::exists(value, ec)) return std::nullopt;
  const size_t eq = value.find('=');
  if (eq == std::string::npos || eq == 0) return std::nullopt;
  const std::string name = value.substr(0, eq);
  if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") !=
      std::string::npos)
    return std::nullopt;
  return std::pair{name, value.substr(eq + 1)};
}

// The resolved dump of component `name` ("encoders.image") inside the model's dump, or null.
const blocks::config::Json* component_json(const blocks::config::Json& model,
                                           const std::string& name) {
  const blocks::config::Json* at = &model;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t dot = std::min(name.find('.', start), name.size());
    const std::string key = name.substr(start, dot - start);
    if (at->is_array()) {  // connectors.0: a list item by index
      if (key.empty() || key.find_first_not_of("0123456789") != std::string::npos) return nullptr;
      const size_t index = std::stoul(key);
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      if (!at->is_object() || !at->contains(key)) return nullptr;
      at = &(*at)[key];
    }
    start = dot + 1;
  }
  return at;
}

// Loads each component from its own checkpoint (its family's names, a CLIP tower's, or blocks'
// names relative to the component) and initializes from --seed what no source gave, saying
// which components came from where. Shapes are checked by the load; whole-model architecture
// checks do not apply to parts.
void load_components(const ModelArgs& args, const blocks::config::Document& doc,
                     const std::vector<std::pair<std::string, std::string>>& components,
                     const std::map<std::string, std::string>& maps, blocks::Model& model) {
  const blocks::config::Json dumped = doc.dump()["model"];
  std::set<std::string> loaded;
  for (const auto& [name, path] : components) {
    const blocks::config::Json* config = component_json(dumped, name);
    std::vector<std::pair<std::string, at::Tensor>> targets;
    for (const auto& p : model.parameters)
      if (p.name.rfind(name + ".", 0) == 0) targets.emplace_back(p.name.substr(name.size() + 1), p.tensor);
    if (!config || targets.empty())
      throw blocks::weights::MappingError("--weights " + name + "=" + path + ": the model has no "
                                          "component `" + name + "` with parameters");
    blocks::weights::check_component_architecture(doc, name, path, blocks::registry());
    const auto sources = blocks::weights::weight_sources({path});
    for (const auto& note : sources.notes) spdlog::warn("{}", note);
    std::vector<std::string> notes;
    const auto map = maps.find(name);
    const blocks::weights::Mapping mapping =
        map != maps.end() ? blocks::weights::load_mapping_file(map->second)
        : sources.model_type.empty()
            ? blocks::weights::identity_mapping()
            : blocks::weights::component_mapping(sources.model_type, *config, &notes);
    for (const auto& note : notes) spdlog::info("{}: {}", name, note);
    const auto report = blocks::weights::load_mapped(targets, sources.files, mapping, false,
                                                     progress_bar("loading " + name));
    if (!report.unexpected.empty() || !report.mismatched.empty() || !report.non_finite.empty()) {
      blocks::weights::LoadReport problems = report;
      problems.missing.clear();
      throw blocks::weights::LoadError(name + " from " + path + ":\n" + problems.format(), problems);
    }
    const std::set<std::string> missing(report.missing.begin(), report.missing.end());
    int64_t count = 0;
    for (const auto& [relative, tensor] : targets)
      if (!missing.count(relative) && loaded.insert(name + "." + relative).second) ++count;
    spdlog::info("{}: {} tensors from {} ({})", name, count, path,
                 map != maps.end()             ? "names of " + map->second
                 : sources.model_type.empty() ? "blocks' names"
                                               : sources.model_type + " names");
  }
  blocks::nn::ParameterTable rest;
  for (const auto& p : model.parameters)
    if (!loaded.count(p.name)) rest.push_back(p);
  if (rest.empty()) return;
  blocks::nn::initialize(rest, args.seed);
  std::map<std::string, int64_t> by_owner;
  for (const auto& p : rest) by_owner[p.config_path] += p.numel();
  std::string listed;
  for (const auto& [owner, n] : by_owner) listed += "\n  " + owner + " (" + std::to_string(n) + ")";
  spdlog::info("initialized from seed {} ({} tensors, no source gave them):{}", args.seed,
               rest.size(), listed);
}

// The Hugging Face family whose names a PEFT folder for this model uses: --model-type, or the
// family the weights came in.
std::string peft_family(const ModelArgs& args, const std::string& model_type) {
  const std::string family = args.model_type.empty() ? model_type : args.model_type;
  if (family.empty())
    throw blocks::weights::MappingError(
        "a PEFT folder uses a Hugging Face family's names: give --model-type (" +
        blocks::hf::family_list() + ") or a base model in a Hugging Face folder");
  return family;
}

// --adapters: an adapters file in blocks' names, or a PEFT folder, onto the loaded base.
void load_adapters(const ModelArgs& args, Prepared& p) {
  const bool folder = blocks::weights::is_peft_folder(args.adapters);
  const auto report = blocks::weights::load_adapters(
      blocks::nn::model_tensors(p.model.parameters), args.adapters,
      folder ? peft_family(args, p.model_type) : "",
      folder ? blocks::weights::lora_settings(p.doc.dump()["model"])
             : blocks::weights::LoraSettings{});
  spdlog::info("{} adapter tensors from {}{}", report.loaded, folder ? "the PEFT folder " : "",
               args.adapters);
}

}  // namespace

std::variant<Prepared, int> prepare(const ModelArgs& args, bool keep_checkpoint_dtype) {
  std::string hf_type;
  const bool hf = blocks::hf::is_folder(args.model);
  auto doc = hf ? load_hf(args, hf_type) : load(args);
  if (!doc) return 1;
  if (!weights_given(args)) return 2;
  std::vector<std::pair<std::string, std::string>> components;
  for (const auto& w : args.weights)
    if (auto c = component_source(w)) components.push_back(*c);
  if (args.map.size() > 1 && components.empty()) {
    spdlog::error("one --map renames --weights files; several are for components "
                  "(--weights COMPONENT=PATH --map COMPONENT=MAP.yaml)");
    return 2;
  }
  if (!components.empty()) {
    if (components.size() != args.weights.size()) {
      spdlog::error("--weights COMPONENT=PATH loads parts of a model: give every --weights that "
                    "way");
      return 2;
    }
    // Each --map names a component given a checkpoint.
    std::map<std::string, std::string> maps;
    for (const auto& m : args.map) {
      const size_t eq = m.find('=');
      const std::string name = eq == std::string::npos ? "" : m.substr(0, eq);
      const bool known = std::any_of(components.begin(), components.end(),
                                     [&](const auto& c) { return c.first == name; });
      if (!known || !maps.emplace(name, m.substr(eq + 1)).second) {
        spdlog::error("--map {}: with --weights COMPONENT=PATH, give --map COMPONENT=MAP.yaml "
                      "once for a component given there",
                      m);
        return 2;
      }
    }
    auto dtype = dtype_of(args.dtype);
    if (!dtype) return 2;
    blocks::Model model = build_checked(*doc, *dtype);
    try {
      load_components(args, *doc, components, maps, model);
    } catch (const blocks::weights::MappingError& e) {
      spdlog::error("{}", e.what());
      return 1;
    } catch (const blocks::weights::ArchitectureError& e) {
      spdlog::error("{}", e.what());
      return 1;
    } catch (const blocks::config::ConfigError& e) {
      std::cerr << e.diagnostics().format();
      return 1;
    }
    return Prepared{std::move(*doc), std::move(model), ""};
  }
  const bool random = args.weights.empty() && args.seed_given;
  blocks::weights::WeightSources sources;
  try {
    if (!random) sources = sources_of(args, hf_type);
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
    dtype = blocks::weights::checkpoint_dtype(sources.files);
  if (!dtype) return 2;
  spdlog::debug("building in {}", c10::toString(*dtype));
  blocks::Model model = build_checked(*doc, *dtype);
  if (random) {
    blocks::nn::initialize(model.parameters, args.seed, blocks::nn::module_registry(),
                              progress_bar("initializing"));
  } else {
    try {
      load_weights(args, sources, *doc, model);
    } catch (const blocks::weights::MappingError& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
  }
  Prepared prepared{std::move(*doc), std::move(model), sources.model_type};
  if (!args.adapters.empty()) {
    try {
      load_adapters(args, prepared);
    } catch (const blocks::Error& e) {  // mapping, load and file errors alike
      spdlog::error("--adapters {}: {}", args.adapters, e.what());
      return 1;
    }
  }
  return prepared;
}

namespace {

std::vector<std::pair<std::string, at::Tensor>> named(const blocks::Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : model.parameters) out.emplace_back(p.name, p.tensor.detach());
  return out;
}

// Every `peft: {type: lora...}` of a dumped document (models inside models too) becomes none.
void drop_peft(blocks::config::Json& json) {
  if (!json.is_object() && !json.is_array()) return;
  if (json.is_object() && json.contains("peft") && json["peft"].is_object())
    json["peft"] = {{"type", "none"}};
  for (auto& item : json) drop_peft(item);
}

// --merge-adapters: the adapters folded into their base weights, and the document without PEFT
// (resolved again, so that every linear's derived LoRA fields go too). False (logged) when the
// model has no adapters.
bool merge_into_base(Prepared& p) {
  const int64_t merged = blocks::merge_adapters(*p.model.module);
  if (merged == 0) {
    spdlog::error("--merge-adapters: the model has no LoRA adapters");
    return false;
  }
  blocks::config::Json json = p.doc.dump();
  drop_peft(json);
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::config::load_document_text(blocks::config::to_yaml(json), "merged",
                                                blocks::registry(), diagnostics);
  if (!doc) throw blocks::Error("--merge-adapters: the model without PEFT does not resolve:\n" +
                                diagnostics.format());
  p.doc = std::move(*doc);
  blocks::nn::ParameterTable kept;
  for (auto& record : p.model.parameters)
    if (record.role != "lora_a" && record.role != "lora_b") kept.push_back(record);
  p.model.parameters = std::move(kept);
  spdlog::info("merged the adapters of {} linear layers into their weights", merged);
  return true;
}

}  // namespace

namespace {

// The images as pixel_values [images, 3, height, width]; every image must come out one size.
at::Tensor image_tensor(const std::vector<std::string>& paths,
                        const blocks::media::ImageProcessor& processor) {
  std::vector<at::Tensor> images;
  for (const auto& path : paths) {
    const auto image = blocks::media::read_image(path);
    int64_t height = 0, width = 0;
    std::vector<float> values = blocks::media::preprocess(image, processor, &height, &width);
    images.push_back(at::tensor(values).view({3, height, width}));
    if (images.size() > 1 && images.back().sizes() != images.front().sizes())
      throw blocks::media::ImageError(path + ": prepared to " + std::to_string(height) + "x" +
                                      std::to_string(width) + " pixels, but " + paths.front() +
                                      " to " + std::to_string(images.front().size(1)) + "x" +
                                      std::to_string(images.front().size(2)) +
                                      " (without a center crop, images must share one size)");
  }
  return at::stack(images);
}

}  // namespace

std::variant<at::Tensor, int> read_images(const ModelArgs& args) {
  std::string processor = args.image_processor;
  if (processor.empty() && blocks::hf::is_folder(args.model))
    processor = (std::filesystem::path(args.model) / "preprocessor_config.json").string();
  if (processor.empty()) {
    spdlog::error("--image needs --image-processor FILE (a preprocessor_config.json) when "
                  "--model is not a Hugging Face folder");
    return 2;
  }
  return image_tensor(args.images, blocks::media::read_image_processor(processor));
}

namespace {

// Puts the images where the model's image encoder takes them and expands each placeholder of
// the tokens to the run an image fills.
void place_images(blocks::Model& model, const at::Tensor& pixels, blocks::ModelInput& in) {
  auto* fusion = dynamic_cast<blocks::EarlyFusionModel*>(model.module.get());
  // An encoder alone takes the images as they are.
  if (!fusion) {
    const auto specs = model.module->inputs();
    if (specs.size() == 1 && specs[0].name == "pixel_values") {
      in.named["pixel_values"] = pixels;
      return;
    }
  }
  const blocks::EarlyFusionModel::Part* part = nullptr;
  if (fusion)
    for (const auto& [name, p] : fusion->parts)
      if (p.input == "pixel_values") part = &p;
  if (!part)
    throw blocks::nn::InputError("model", "--image: the model has no image encoder taking "
                                          "pixel_values");
  if (!in.tokens.defined())
    throw blocks::nn::InputError("model", "--image: the input file holds no tokens to place "
                                          "the images in");
  const at::Tensor tokens = in.tokens;
  in.tokens = blocks::expand_placeholders(tokens, part->placeholder, part->tokens);
  // A mask entry of a placeholder covers its whole run.
  if (in.attention_mask.defined() && in.attention_mask.sizes() == tokens.sizes()) {
    const at::Tensor repeats =
        at::where(tokens.eq(part->placeholder), at::scalar_tensor(part->tokens, at::kLong),
                  at::scalar_tensor(int64_t{1}, at::kLong));
    std::vector<at::Tensor> rows;
    for (int64_t r = 0; r < tokens.size(0); ++r)
      rows.push_back(at::repeat_interleave(in.attention_mask[r], repeats[r]));
    in.attention_mask = at::stack(rows);
  }
  in.named["pixel_values"] = pixels;
}

}  // namespace

// parse_size is defined in model_cli.cpp, which blockc links too: sizes are checked while parsing.

int run_forward(const ModelArgs& args) {
  if (!weights_given(args)) return 2;
  if (args.input.empty() && args.images.empty()) {
    spdlog::error("give --input FILE (or --image alone, for a model that takes only images)");
    return 2;
  }
  blocks::io::check_output(args.output);
  // The input is read before the weights: a wrong path should not wait for a long load. Every
  // tensor of the file is an input by its name; the model refuses names it does not take.
  std::map<std::string, at::Tensor> tensors;
  if (!args.input.empty()) {
    const auto file = blocks::weights::SafetensorsFile::open(args.input);
    for (const auto& info : file.tensors()) tensors[info.name] = file.tensor(info.name);
  }
  // Images too, before the weights: a file that is not an image fails at once.
  std::optional<at::Tensor> pixels;
  if (!args.images.empty()) {
    if (tensors.count("pixel_values")) {
      spdlog::error("{} holds pixel_values and --image gives images too; give one of them",
                    args.input);
      return 2;
    }
    auto read = read_images(args);
    if (auto* code = std::get_if<int>(&read)) return *code;
    pixels = std::get<at::Tensor>(read);
  }
  blocks::ModelInput in = blocks::ModelInput::from_tensors(std::move(tensors));
  in.hidden_states = args.hidden_states;
  auto prepared = prepare(args, /*keep_checkpoint_dtype=*/false);
  if (auto* code = std::get_if<int>(&prepared)) return *code;
  blocks::Model& model = std::get<Prepared>(prepared).model;
  if (pixels) place_images(model, *pixels, in);
  model.module->eval();
  c10::InferenceMode inference;
  blocks::ModelOutput out = model.module->forward(in);
  // A model without a head (encoder_model) gives its features instead of logits.
  std::vector<std::pair<std::string, at::Tensor>> written;
  if (out.logits.defined())
    written.emplace_back("logits", out.logits.to(at::kFloat));
  else if (auto it = out.hidden_states.find("features"); it != out.hidden_states.end())
    written.emplace_back("features", it->second.to(at::kFloat));
  for (const auto& name : args.hidden_states)
    written.emplace_back("hidden." + name, out.hidden_states.at(name).to(at::kFloat));
  blocks::weights::write_safetensors(args.output, written, {{"format", "pt"}});
  spdlog::debug("wrote {} {} to {}", written.front().first,
                c10::str(written.front().second.sizes()), args.output);
  return 0;
}

int run_export(const ModelArgs& args) {
  const auto max_shard = parse_size(args.max_shard_size);
  if (!max_shard) {
    spdlog::error("--max-shard-size '{}': expected a size such as 5GB, 500MB or 2GiB",
                  args.max_shard_size);
    return 2;
  }
  // Before the load: a wrong output is found at once.
  if (args.to == "blocks")
    blocks::io::check_output(args.output);
  else
    blocks::weights::check_hf_output_folder(args.output, args.replace);
  auto prepared = prepare(args, /*keep_checkpoint_dtype=*/true);
  if (auto* code = std::get_if<int>(&prepared)) return *code;
  Prepared& p = std::get<Prepared>(prepared);
  if (args.merge_adapters && !merge_into_base(p)) return 1;
  if (args.adapters_only) {
    const auto part = blocks::weights::adapter_part(blocks::nn::model_tensors(p.model.parameters));
    if (part.empty()) {
      spdlog::error("--adapters-only: the model has no LoRA adapters");
      return 1;
    }
    if (args.to == "hf") {
      blocks::weights::PeftFolderOptions options;
      options.lora = blocks::weights::lora_settings(p.doc.dump()["model"]);
      if (blocks::hf::is_folder(args.model)) options.base_model = args.model;
      const auto mapping = blocks::weights::hf_mapping(peft_family(args, p.model_type));
      const size_t written = blocks::weights::write_peft_folder(
          args.output, blocks::nn::model_tensors(p.model.parameters), mapping, options);
      spdlog::info("wrote a PEFT folder of {} tensors ({} names) to {}", written,
                   mapping.name, args.output);
      return 0;
    }
    std::vector<std::pair<std::string, at::Tensor>> adapters;
    for (const auto& t : part) adapters.emplace_back(t.name, t.tensor.detach());
    blocks::weights::write_safetensors(args.output, adapters,
                                       {{"format", "pt"},
                                        {"producer", "blockc export --adapters-only"},
                                        {"blocks_config", p.doc.dump().dump()}});
    spdlog::info("wrote {} tensors (adapters and what trains in full) to {}", adapters.size(),
                 args.output);
    return 0;
  }
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
    if (blocks::hf::is_folder(source) && !options.max_position_embeddings)
      if (auto n = blocks::hf::config_value(source, "max_position_embeddings"))
        options.max_position_embeddings = blocks::config::parse_integer(*n);
  // A composite export reads its config.json back through the registry (export_llava).
  options.resolve = [](const blocks::config::Json& document, blocks::config::Diagnostics& d) {
    return blocks::config::load_document_text(blocks::config::to_yaml(document), "config.json",
                                              blocks::registry(), d);
  };
  auto config = blocks::hf::export_config(p.doc.dump(), options, diagnostics);
  if (!config) {
    std::cerr << diagnostics.format();
    spdlog::error("the model cannot be written as a Hugging Face {} config",
                  options.model_type.empty() ? blocks::hf::family_list(" or ")
                                             : options.model_type);
    return 1;
  }
  const std::string model_type = (*config)["model_type"].get<std::string>();
  size_t written = 0;
  if (model_type == "llava") {
    // Tower layers past the feature layer (and post_layernorm) were never built: the folder
    // lacks them, and transformers initializes them itself, unused.
    std::vector<std::string> notes;
    const auto mapping = blocks::weights::hf_mapping(
        model_type, p.doc.dump()["model"],
        (*config)["text_config"]["model_type"].get<std::string>(), &notes);
    for (const auto& note : notes)
      spdlog::info("omitted from the folder, as on load: {}; transformers initializes what a "
                   "folder lacks, and LLaVA never reads it",
                   note);
    written = blocks::weights::save_hf_folder(args.output, *config, named(p.model), mapping,
                                              *max_shard, args.replace);
  } else {
    written = blocks::weights::save_hf_folder(args.output, *config, named(p.model), *max_shard,
                                              args.replace);
  }
  spdlog::info("wrote {} tensors and a {} config.json to {}", written, model_type,
               args.output);
  return 0;
}

}  // namespace blockc
