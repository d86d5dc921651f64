#include "framework/weights/adapters.h"

#include <c10/core/GradMode.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>

#include "framework/hf/family.h"
#include "framework/io/files.h"
#include "framework/weights/name_pattern.h"
#include "framework/weights/safetensors.h"

namespace blocks::weights {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "base_model.model.";  // PeftModel -> LoraModel -> the model
constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

std::string without_suffix(const std::string& name, const std::string& suffix) {
  return name.substr(0, name.size() - suffix.size());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One linear with adapters: its lora_a and lora_b (stacked for MoE experts: [E, ...]).
struct Adapted {
  const ModelTensor* a = nullptr;
  const ModelTensor* b = nullptr;
  std::string base;  // the linear's weight: X.weight
};

// One Hugging Face module and the adapters of blocks' linears inside it: a plain module has
// one part; a fused one (c_attn) has the rule's parts, some of them adapted.
struct Module {
  std::string name;  // model.layers.0.self_attn.q_proj, without base_model.model.
  const MappingRule* rule = nullptr;
  std::vector<std::string> parts;      // blocks' base weights of every part
  std::map<size_t, at::Tensor> a, b;   // adapted part -> lora_a / lora_b (one expert's slice)
  std::map<size_t, std::string> a_name, b_name;  // for messages
};

// Every adapted linear of `model`, grouped by the Hugging Face module it maps to.
std::vector<Module> modules_of(const std::vector<ModelTensor>& model, const Mapping& mapping) {
  std::map<std::string, Adapted> adapted;
  for (const auto& t : model) {
    if (t.role == "lora_a") adapted[without_suffix(t.name, ".lora_a")].a = &t;
    if (t.role == "lora_b") adapted[without_suffix(t.name, ".lora_b")].b = &t;
  }
  std::map<std::string, Module> modules;
  std::vector<std::string> order;
  for (auto& [linear, ab] : adapted) {
    if (!ab.a || !ab.b) throw MappingError(linear + ": lora_a without lora_b, or the reverse");
    const ExportPlace place = export_place(linear + ".weight", mapping);
    const bool stacked = place.rule->stack_capture > 0;
    const int64_t slices = stacked ? ab.a->tensor.size(0) : 1;
    for (int64_t e = 0; e < slices; ++e) {
      const std::string tensor = place.checkpoint_name(stacked ? e : -1);
      if (!ends_with(tensor, ".weight"))
        throw MappingError(mapping.name + ": " + linear + ".weight maps to " + tensor +
                           ", not a module's weight, so its adapter has no PEFT name");
      const std::string name = without_suffix(tensor, ".weight");
      auto [it, fresh] = modules.try_emplace(name);
      Module& m = it->second;
      if (fresh) {
        order.push_back(name);
        m.name = name;
        m.rule = place.rule;
        m.parts = place.parts;
      }
      m.a[place.part] = stacked ? ab.a->tensor[e] : ab.a->tensor;
      m.b[place.part] = stacked ? ab.b->tensor[e] : ab.b->tensor;
      const std::string slice = stacked ? "[" + std::to_string(e) + "]" : "";
      m.a_name[place.part] = ab.a->name + slice;
      m.b_name[place.part] = ab.b->name + slice;
    }
  }
  std::vector<Module> out;
  for (const auto& name : order) out.push_back(std::move(modules.at(name)));
  return out;
}

// Rows of each part of a fused module, from blocks' base weights (split along dim 0).
std::vector<int64_t> part_rows(const Module& m, const std::map<std::string, at::Tensor>& by_name,
                               const Mapping& mapping) {
  if (m.rule->split_dim != 0)
    throw MappingError(mapping.name + ": " + m.name + " fuses linears along their inputs (`" +
                       m.rule->from + "` splits dim " + std::to_string(m.rule->split_dim) +
                       "), which one PEFT adapter cannot express");
  if (m.rule->rotary != MappingRule::Rotary::none)
    throw MappingError(mapping.name + ": " + m.name + " is both fused and rotary-permuted; "
                       "its adapters have no PEFT form");
  std::vector<int64_t> rows;
  for (const auto& part : m.parts) {
    auto it = by_name.find(part);
    if (it == by_name.end())
      throw MappingError(mapping.name + ": " + m.name + " is fused from " + part +
                         ", which the model lacks");
    rows.push_back(it->second.size(0));
  }
  return rows;
}

std::map<std::string, at::Tensor> base_weights(const std::vector<ModelTensor>& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& t : model)
    if (t.role == "base") out.emplace(t.name, t.tensor);
  return out;
}

// The blocks names (split partners included) and checkpoint tensors of the fully trained
// parameters, in `mapping`'s names.
std::vector<std::pair<std::string, at::Tensor>> full_tensors(
    const std::vector<ModelTensor>& part, const std::vector<ModelTensor>& model,
    const Mapping& mapping) {
  std::set<std::string> wanted;
  for (const auto& t : part)
    if (t.role == "base") {
      const ExportPlace place = export_place(t.name, mapping);
      wanted.insert(place.parts.begin(), place.parts.end());
    }
  std::vector<std::pair<std::string, at::Tensor>> subset;
  for (const auto& t : model)
    if (wanted.count(t.name)) subset.emplace_back(t.name, t.tensor.detach());
  return subset.empty() ? subset : export_mapped(subset, mapping);
}

std::string module_of(const std::string& tensor) {
  const auto dot = tensor.rfind('.');
  return dot == std::string::npos ? tensor : tensor.substr(0, dot);
}

bool all_zero(const at::Tensor& t) { return t.numel() == 0 || !t.ne(0).any().item<bool>(); }


}  // namespace

bool is_adapter(const ModelTensor& t) { return t.role == "lora_a" || t.role == "lora_b"; }

std::vector<ModelTensor> adapter_part(const std::vector<ModelTensor>& model) {
  std::vector<ModelTensor> out;
  bool any = false;
  for (const auto& t : model) any = any || is_adapter(t);
  if (!any) return out;
  for (const auto& t : model)
    if (is_adapter(t) || t.trainable) out.push_back(t);
  return out;
}

size_t write_peft_folder(const std::string& folder, const std::vector<ModelTensor>& model,
                         const Mapping& mapping, const PeftFolderOptions& options) {
  const auto part = adapter_part(model);
  if (part.empty()) throw MappingError("the model has no LoRA adapters");
  const auto bases = base_weights(model);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json targets = nlohmann::json::array(), rank_pattern = nlohmann::json::object(),
                 alpha_pattern = nlohmann::json::object();
  bool transposed = false;
  const double scale = options.lora.alpha / static_cast<double>(options.lora.rank);
  for (const auto& m : modules_of(part, mapping)) {
    at::Tensor a, b;
    if (m.parts.size() == 1) {
      a = m.a.at(0);
      b = m.b.at(0);
      // B's rows are the weight's rows: they move as export moves the weight's.
      if (m.rule->rotary != MappingRule::Rotary::none)
        b = rotary_permute(b, m.rule->head_size, m.rule->rotary, /*inverse=*/true);
    } else {
      const auto rows = part_rows(m, bases, mapping);
      std::vector<at::Tensor> as;
      for (const auto& [p, t] : m.a) as.push_back(t);
      a = at::cat(as, 0);
      int64_t total = 0;
      for (int64_t r : rows) total += r;
      b = at::zeros({total, a.size(0)}, m.b.begin()->second.options());
      int64_t column = 0;
      for (const auto& [p, t] : m.b) {
        int64_t row = 0;
        for (size_t q = 0; q < p; ++q) row += rows[q];
        b.narrow(0, row, rows[p]).narrow(1, column, t.size(1)).copy_(t.detach());
        column += t.size(1);
      }
    }
    transposed = transposed || m.rule->transpose;
    const int64_t rank = a.size(0);
    if (rank != options.lora.rank) {
      rank_pattern[m.name] = rank;
      alpha_pattern[m.name] = scale * static_cast<double>(rank);
    }
    targets.push_back(m.name);
    tensors.emplace_back(kPrefix + m.name + ".lora_A.weight", a.detach().contiguous());
    tensors.emplace_back(kPrefix + m.name + ".lora_B.weight", b.detach().contiguous());
  }
  nlohmann::json saved = nullptr;
  for (auto& [name, t] : full_tensors(part, model, mapping)) {
    const std::string module = module_of(name);
    if (saved.is_null()) saved = nlohmann::json::array();
    if (std::find(saved.begin(), saved.end(), module) == saved.end()) saved.push_back(module);
    tensors.emplace_back(kPrefix + name, t.contiguous());
  }
  // Keys as peft's LoraConfig names them (peft/tuners/lora/config.py); target_modules lists
  // full module names, which peft matches exactly, so that a name shared by another tower
  // (q_proj in a vision encoder) is never adapted by mistake.
  nlohmann::json config = {
      {"peft_type", "LORA"},
      {"r", options.lora.rank},
      {"lora_alpha", options.lora.alpha},
      {"lora_dropout", 0.0},
      {"target_modules", targets},
      {"modules_to_save", saved},
      {"rank_pattern", rank_pattern},
      {"alpha_pattern", alpha_pattern},
      {"bias", "none"},
      {"fan_in_fan_out", transposed},
      {"use_dora", false},
      {"use_rslora", false},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"base_model_name_or_path",
       options.base_model.empty() ? nlohmann::json(nullptr) : nlohmann::json(options.base_model)},
      {"task_type",
       options.task_type.empty() ? nlohmann::json(nullptr) : nlohmann::json(options.task_type)},
  };
  fs::create_directories(folder);
  write_safetensors((fs::path(folder) / kWeightsFile).string(), tensors,
                    {{"format", "pt"}, {"producer", "blocks"}});
  io::write_file((fs::path(folder) / kConfigFile).string(), config.dump(2) + "\n");
  return tensors.size();
}

LoraSettings PeftConfig::of(const std::string& module) const {
  LoraSettings out = lora;
  auto find = [&](const auto& patterns) -> const auto* {
    for (const auto& entry : patterns)
      if (NamePattern("(?:.*\\.)?(?:" + entry.first + ")").full_match(module)) return &entry;
    return static_cast<decltype(&*patterns.begin())>(nullptr);
  };
  if (const auto* r = find(rank_pattern)) out.rank = r->second;
  if (const auto* a = find(alpha_pattern)) out.alpha = a->second;
  return out;
}

bool holds_adapters(const std::vector<std::string>& files) {
  for (const auto& path : files) {
    const auto file = SafetensorsFile::open(path);  // outlives the loop over its tensors
    for (const auto& info : file.tensors())
      if (ends_with(info.name, ".lora_a") || ends_with(info.name, ".lora_b") ||
          info.name.find(".lora_A.") != std::string::npos ||
          info.name.find(".lora_B.") != std::string::npos)
        return true;
  }
  return false;
}

bool is_peft_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / kConfigFile, ec);
}

PeftConfig read_peft_config(const std::string& folder) {
  const fs::path path = fs::path(folder) / kConfigFile;
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(io::read_file(path.string()));
  } catch (const nlohmann::json::exception& e) {
    throw MappingError(path.string() + ": not JSON: " + e.what());
  }
  if (!json.is_object()) throw MappingError(path.string() + ": expected a JSON object");
  const std::string where = path.string() + ": ";
  auto text = [&](const char* key, const std::string& fallback) {
    if (!json.contains(key) || json[key].is_null()) return fallback;
    if (!json[key].is_string()) throw MappingError(where + key + " is not a string");
    return json[key].get<std::string>();
  };
  auto flag = [&](const char* key) {
    return json.contains(key) && json[key].is_boolean() && json[key].get<bool>();
  };
  const std::string type = text("peft_type", "");
  if (type != "LORA")
    throw MappingError(where + "peft_type is " + (type.empty() ? "missing" : "'" + type + "'") +
                       "; blocks computes LoRA adapters only (peft_type LORA)");
  if (flag("use_dora"))
    throw MappingError(where + "use_dora: DoRA's magnitude vectors are not LoRA; blocks does "
                       "not compute them");
  if (flag("use_rslora"))
    throw MappingError(where + "use_rslora: rank-stabilized scaling (alpha / sqrt(r)) differs "
                       "from blocks' alpha / rank");
  if (const std::string bias = text("bias", "none"); bias != "none")
    throw MappingError(where + "bias is '" + bias + "'; blocks' adapters train no biases "
                       "(bias: none)");
  PeftConfig out;
  auto number = [&](const nlohmann::json& v, const std::string& key) {
    if (!v.is_number()) throw MappingError(where + key + " is not a number");
    return v.get<double>();
  };
  // peft's LoraConfig defaults: r 8, lora_alpha 8.
  out.lora.rank = json.contains("r") ? static_cast<int64_t>(number(json["r"], "r")) : 8;
  out.lora.alpha = json.contains("lora_alpha") ? number(json["lora_alpha"], "lora_alpha") : 8.0;
  if (out.lora.rank <= 0 || out.lora.alpha <= 0)
    throw MappingError(where + "r and lora_alpha must be positive");
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (!json.contains(key) || json[key].is_null()) continue;
    if (!json[key].is_object()) throw MappingError(where + key + " is not an object");
    for (const auto& [pattern, value] : json[key].items()) {
      const double v = number(value, std::string(key) + "." + pattern);
      if (std::string(key) == "rank_pattern")
        out.rank_pattern[pattern] = static_cast<int64_t>(v);
      else
        out.alpha_pattern[pattern] = v;
    }
  }
  if (json.contains("modules_to_save") && json["modules_to_save"].is_array())
    for (const auto& m : json["modules_to_save"])
      if (m.is_string()) out.modules_to_save.push_back(m.get<std::string>());
  out.base_model = text("base_model_name_or_path", "");
  return out;
}

LoadReport load_peft_folder(const std::vector<ModelTensor>& model, const std::string& folder,
                            const Mapping& mapping, const LoraSettings& lora) {
  const PeftConfig config = read_peft_config(folder);
  const fs::path weights = fs::path(folder) / kWeightsFile;
  if (!fs::exists(weights))
    throw MappingError(weights.string() + ": missing (blocks reads adapters in safetensors; "
                       "adapter_model.bin is a pickle)");
  const auto part = adapter_part(model);
  if (part.empty()) throw MappingError("the model has no LoRA adapters to load " + folder + " into");
  const auto file = SafetensorsFile::open(weights.string());
  const auto bases = base_weights(model);
  const double scale = lora.alpha / static_cast<double>(lora.rank);
  LoadReport report;
  std::set<std::string> used;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (target, value)
  auto shape_of = [](const at::Tensor& t) { return t.sizes().vec(); };
  auto check = [&](const std::string& what, const at::Tensor& target, const at::Tensor& value) {
    if (shape_of(target) == shape_of(value)) {
      copies.emplace_back(target, value);
      return true;
    }
    report.mismatched.push_back(what + ": checkpoint " + shape_text(shape_of(value)) +
                                ", model " + shape_text(shape_of(target)));
    return false;
  };
  for (const auto& m : modules_of(part, mapping)) {
    const std::string a_key = kPrefix + m.name + ".lora_A.weight";
    const std::string b_key = kPrefix + m.name + ".lora_B.weight";
    if (!file.contains(a_key) || !file.contains(b_key)) {
      for (const auto& [p, name] : m.a_name) report.missing.push_back(name + " (from " + a_key + ")");
      for (const auto& [p, name] : m.b_name) report.missing.push_back(name + " (from " + b_key + ")");
      continue;
    }
    used.insert(a_key);
    used.insert(b_key);
    const at::Tensor a = file.tensor(a_key), b = file.tensor(b_key);
    const LoraSettings own = config.of(m.name);
    const double their = own.alpha / static_cast<double>(own.rank);
    if (std::abs(their - scale) > 1e-12 * std::abs(scale)) {
      report.mismatched.push_back(m.name + ": scale lora_alpha / r = " + std::to_string(own.alpha) +
                                  " / " + std::to_string(own.rank) + " in " + folder +
                                  ", the model's alpha / rank = " + std::to_string(lora.alpha) +
                                  " / " + std::to_string(lora.rank));
      continue;
    }
    if (a.dim() != 2 || b.dim() != 2 || b.size(1) != a.size(0)) {
      report.mismatched.push_back(m.name + ": lora_A " + shape_text(shape_of(a)) + " and lora_B " +
                                  shape_text(shape_of(b)) + " are not [r, in] and [out, r]");
      continue;
    }
    if (m.parts.size() == 1) {
      at::Tensor rows = b;
      if (m.rule->rotary != MappingRule::Rotary::none)
        rows = rotary_permute(b, m.rule->head_size, m.rule->rotary);
      check(m.a_name.at(0) + " (from " + a_key + ")", m.a.at(0), a);
      check(m.b_name.at(0) + " (from " + b_key + ")", m.b.at(0), rows);
      continue;
    }
    const auto rows = part_rows(m, bases, mapping);
    int64_t total = 0;
    for (int64_t r : rows) total += r;
    if (b.size(0) != total) {
      report.mismatched.push_back(b_key + ": checkpoint " + shape_text(shape_of(b)) + ", model " +
                                  std::to_string(total) + " rows (" + m.parts.front() + " ...)");
      continue;
    }
    const int64_t r = m.a.begin()->second.size(0);
    const auto adapted = static_cast<int64_t>(m.a.size());
    // Rank r: one A shared by every part (as peft trains it). Rank k r: the parts side by side.
    const bool shared = a.size(0) == r;
    if (!shared && a.size(0) != adapted * r) {
      report.mismatched.push_back(m.name + ": rank " + std::to_string(a.size(0)) + " is neither " +
                                  std::to_string(r) + " (one adapter shared by the parts) nor " +
                                  std::to_string(adapted * r) + " (the " +
                                  std::to_string(adapted) + " adapted parts side by side)");
      continue;
    }
    int64_t row = 0, column = 0;
    for (size_t p = 0; p < m.parts.size(); ++p) {
      const at::Tensor part_rows_b = b.narrow(0, row, rows[p]);
      row += rows[p];
      if (!m.a.count(p)) {
        if (!all_zero(part_rows_b))
          report.mismatched.push_back(b_key + ": the rows of " + m.parts[p] +
                                      " are not zero, but the model has no adapter on it");
        continue;
      }
      if (shared) {
        check(m.a_name.at(p) + " (from " + a_key + ")", m.a.at(p), a);
        check(m.b_name.at(p) + " (from " + b_key + ")", m.b.at(p), part_rows_b);
        continue;
      }
      const at::Tensor own_b = part_rows_b.narrow(1, column, r);
      const bool diagonal = all_zero(part_rows_b.narrow(1, 0, column)) &&
                            all_zero(part_rows_b.narrow(1, column + r, a.size(0) - column - r));
      if (!diagonal)
        report.mismatched.push_back(b_key + ": the rows of " + m.parts[p] +
                                    " reach other parts' adapters; rank " +
                                    std::to_string(a.size(0)) + " loads only side by side");
      check(m.a_name.at(p) + " (from " + a_key + ")", m.a.at(p), a.narrow(0, column, r));
      check(m.b_name.at(p) + " (from " + b_key + ")", m.b.at(p), own_b);
      column += r;
    }
  }
  // Fully trained parameters, in the family's names below base_model.model.
  std::vector<std::pair<std::string, at::Tensor>> full;
  for (const auto& t : part)
    if (!is_adapter(t)) full.emplace_back(t.name, t.tensor);
  Mapping saved = mapping;
  saved.relevant_module = kPrefix + mapping.relevant_module;
  MappingRule skip;
  skip.from = ".*\\.lora_[AB]\\.weight";
  saved.rules.insert(saved.rules.begin(), skip);
  std::vector<size_t> fill;
  std::optional<MappedLoad> load;
  load.emplace(full, std::vector<std::string>{weights.string()}, saved);
  const LoadReport& rest = load->report();
  for (size_t i = 0; i < full.size(); ++i)
    if (load->pieces(i) > 0) fill.push_back(i);
  for (const auto& name : rest.missing)
    report.missing.push_back(name + " (the model trains it in full: list its module in the "
                             "folder's modules_to_save)");
  for (const auto& name : rest.unexpected)
    if (name.find(".lora_") == std::string::npos)
      report.unexpected.push_back(name + " (the folder trains it in full; the model does not)");
  report.mismatched.insert(report.mismatched.end(), rest.mismatched.begin(), rest.mismatched.end());
  for (const auto& info : file.tensors())
    if (info.name.find(".lora_") != std::string::npos && !used.count(info.name))
      report.unexpected.push_back(info.name + " (the model has no adapter on " +
                                  module_of(module_of(info.name)).substr(std::string(kPrefix).size()) +
                                  ")");
  if (!report.ok()) {
    // The message first: the report moves into the exception.
    std::string message = folder + ": the adapters do not fit the model:\n" + report.format();
    throw LoadError(message, std::move(report));
  }
  c10::NoGradGuard no_grad;
  for (auto& [target, value] : copies) target.copy_(value);
  for (size_t i : fill) load->fill(i);
  report.loaded = static_cast<int64_t>(copies.size() + fill.size());
  return report;
}

LoadReport load_adapters_file(const std::vector<ModelTensor>& model, const std::string& file) {
  const auto part = adapter_part(model);
  if (part.empty()) throw MappingError("the model has no LoRA adapters to load " + file + " into");
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& t : part) targets.emplace_back(t.name, t.tensor);
  return load_safetensors(targets, {file}, true);
}

LoadReport load_adapters(const std::vector<ModelTensor>& model, const std::string& path,
                         const std::string& family, const LoraSettings& lora) {
  if (!is_peft_folder(path)) return load_adapters_file(model, path);
  if (family.empty())
    throw MappingError(path + " is a PEFT folder, in a Hugging Face family's names: name the "
                       "family (" + hf::family_list() + ") or start from a Hugging Face folder");
  return load_peft_folder(model, path, hf_mapping(family), lora);
}

LoraSettings lora_settings(const nlohmann::ordered_json& model) {
  std::vector<LoraSettings> found;
  std::function<void(const nlohmann::ordered_json&)> walk = [&](const nlohmann::ordered_json& j) {
    if (j.is_object() && j.contains("peft") && j["peft"].is_object() &&
        j["peft"].value("type", "") == "lora")
      found.push_back({j["peft"]["rank"].get<int64_t>(), j["peft"]["alpha"].get<double>()});
    if (j.is_object() || j.is_array())
      for (const auto& item : j) walk(item);
  };
  walk(model);
  if (found.empty()) throw MappingError("the model has no LoRA (peft: lora)");
  for (const auto& s : found)
    if (s.rank != found.front().rank || s.alpha != found.front().alpha)
      throw MappingError(
          "the model's parts have LoRA of different ranks or alphas; a PEFT folder holds one");
  return found.front();
}

}  // namespace blocks::weights
