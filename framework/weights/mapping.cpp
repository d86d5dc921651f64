// Applying name mappings: loading foreign checkpoints into blocks' parameters and exporting them
// back. Rules are data (mapping.h); this file only interprets them.
#include "framework/weights/mapping.h"

#include <c10/core/GradMode.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "framework/weights/load.h"
#include "framework/weights/name_pattern.h"
#include "framework/weights/safetensors.h"

namespace blocks::weights {

namespace {

// Whether `text` has `$N` at `i`; then `n` is N and `end` the index after its digits.
bool capture_at(const std::string& text, size_t i, size_t& n, size_t& end) {
  if (text[i] != '$' || i + 1 >= text.size() ||
      !std::isdigit(static_cast<unsigned char>(text[i + 1])))
    return false;
  n = 0;
  end = i + 1;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])))
    n = n * 10 + static_cast<size_t>(text[end++] - '0');
  return true;
}

// `$N` in `text` replaced by capture N.
std::string expand(const std::string& text, const std::vector<std::string>& captures) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    size_t n = 0, j = 0;
    if (capture_at(text, i, n, j)) {
      if (n >= captures.size())
        throw MappingError("template `" + text + "` uses $" + std::to_string(n) +
                           ", but its rule has fewer captures");
      out += captures[n];
      i = j - 1;
    } else {
      out += text[i];
    }
  }
  return out;
}

// A template as a regex: literal text escaped, `$N` a capture; `numbers` receives each N in order.
NamePattern template_regex(const std::string& text, std::vector<size_t>& numbers) {
  std::string pattern;
  for (size_t i = 0; i < text.size(); ++i) {
    size_t n = 0, j = 0;
    if (capture_at(text, i, n, j)) {
      numbers.push_back(n);
      pattern += "(.+?)";
      i = j - 1;
    } else {
      if (std::string("\\^$.|?*+()[]{}").find(text[i]) != std::string::npos) pattern += '\\';
      pattern += text[i];
    }
  }
  return NamePattern(pattern);
}

// The end of the group opening at `open` (the index of its `)`).
size_t group_end(const std::string& re, size_t open) {
  int depth = 0;
  for (size_t i = open; i < re.size(); ++i) {
    if (re[i] == '\\') {
      ++i;
    } else if (re[i] == '(') {
      ++depth;
    } else if (re[i] == ')' && --depth == 0) {
      return i;
    }
  }
  throw MappingError("unbalanced parentheses in `" + re + "`");
}

// Writes out a simple regex (see MappingRule) with its captures filled in; `next` counts
// capturing groups in order of their `(`.
std::string fill_regex(const std::string& re, size_t begin, size_t end,
                       const std::map<size_t, std::string>& captures, size_t& next,
                       const std::string& whole) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < end) {
      out += re[++i];
    } else if (c == '(') {
      const size_t close = group_end(re, i);
      if (re.compare(i, 3, "(?:") == 0) {
        out += fill_regex(re, i + 3, close, captures, next, whole);
        i = close;
        if (i + 1 < end && re[i + 1] == '?') ++i;
      } else {
        const size_t number = ++next;
        for (size_t j = i + 1; j < close; ++j)  // inner capturing groups keep their numbers
          if (re[j] == '\\')
            ++j;
          else if (re[j] == '(' && re.compare(j, 3, "(?:") != 0)
            ++next;
        auto it = captures.find(number);
        if (it == captures.end())
          throw MappingError("cannot export through `" + whole + "`: capture " +
                             std::to_string(number) + " is not in its targets");
        out += it->second;
        i = close;
      }
    } else if (std::string("^$.|?*+[]{}").find(c) != std::string::npos) {
      throw MappingError("cannot export through `" + whole +
                         "`: only literal text, `\\.`, `(...)` and `(?:...)?` can be reversed");
    } else {
      out += c;
    }
  }
  return out;
}

std::string fill_from(const MappingRule& rule, const std::map<size_t, std::string>& captures) {
  size_t next = 0;
  return fill_regex(rule.from, 0, rule.from.size(), captures, next, rule.from);
}

struct CompiledRule {
  const MappingRule* rule;
  NamePattern from;
};

std::vector<CompiledRule> compile(const Mapping& mapping) {
  std::vector<CompiledRule> out;
  for (const auto& rule : mapping.rules) {
    try {
      out.push_back({&rule, NamePattern(rule.from)});
    } catch (const PatternError& e) {
      throw MappingError(mapping.name + ": rule `" + rule.from + "`: " + e.what());
    }
  }
  return out;
}

// Whether `pattern` matches all of `name`, a match needing too much work being a MappingError
// of `mapping`.
bool matches(const Mapping& mapping, const NamePattern& pattern, const std::string& name,
             std::vector<std::string>* captures) {
  try {
    return pattern.full_match(name, captures);
  } catch (const PatternError& e) {
    throw MappingError((mapping.name.empty() ? "" : mapping.name + ": ") + e.what());
  }
}

// One checkpoint tensor (or one part of it) headed for one parameter.
struct Piece {
  std::string source;
  const SafetensorsFile* file = nullptr;
  const MappingRule* rule = nullptr;
  int64_t part = 0;            // split part
  int64_t index = -1;          // stack index; -1: none
  std::vector<int64_t> shape;  // after transpose and split
  std::string problem;         // a layout the rule cannot apply to
};

// The pieces a checkpoint tensor becomes under `rule`, given the match.
std::vector<std::pair<std::string, Piece>> pieces_of(const TensorInfo& info,
                                                     const SafetensorsFile& file,
                                                     const MappingRule& rule,
                                                     const std::vector<std::string>& captures) {
  Piece base{info.name, &file, &rule, 0, -1, info.shape, ""};
  try {
    scalar_type(info.dtype);  // a dtype LibTorch lacks is a problem now, not mid-load
  } catch (const SafetensorsError& e) {
    base.problem = e.what();
  }
  if (rule.transpose && base.problem.empty()) {
    if (base.shape.size() != 2)
      base.problem = "checkpoint " + shape_text(info.shape) + " is not 2-D, cannot transpose";
    else
      std::swap(base.shape[0], base.shape[1]);
  }
  if (rule.slice && base.problem.empty()) {
    const auto dims = static_cast<int64_t>(base.shape.size());
    if (rule.slice_dim < 0 || rule.slice_dim >= dims || rule.slice_start < 0 ||
        rule.slice_end < rule.slice_start || rule.slice_end > base.shape[rule.slice_dim])
      base.problem = "checkpoint " + shape_text(info.shape) + " has no slice [" +
                     std::to_string(rule.slice_start) + ", " + std::to_string(rule.slice_end) +
                     ") along dim " + std::to_string(rule.slice_dim);
    else
      base.shape[rule.slice_dim] = rule.slice_end - rule.slice_start;
  }
  if (rule.rotary != MappingRule::Rotary::none && base.problem.empty() &&
      (base.shape.empty() || rule.head_size <= 0 || rule.head_size % 2 != 0 ||
       base.shape[0] % rule.head_size != 0))
    base.problem = "checkpoint " + shape_text(info.shape) +
                   " cannot be permuted in rotary heads of " + std::to_string(rule.head_size);
  const auto parts = static_cast<int64_t>(rule.to.size());
  int64_t sized_total = 0;
  for (int64_t size : rule.split_sizes) sized_total += size;
  if (!rule.split_sizes.empty() && base.problem.empty()) {
    const auto dims = static_cast<int64_t>(base.shape.size());
    if (static_cast<int64_t>(rule.split_sizes.size()) != parts || rule.split_dim < 0 ||
        rule.split_dim >= dims || base.shape[rule.split_dim] != sized_total)
      base.problem = "checkpoint " + shape_text(info.shape) + " cannot split in parts of " +
                     shape_text(rule.split_sizes) + " along dim " + std::to_string(rule.split_dim);
  } else if (parts > 1 && base.problem.empty()) {
    const auto dims = static_cast<int64_t>(base.shape.size());
    if (rule.split_dim < 0 || rule.split_dim >= dims || base.shape[rule.split_dim] % parts != 0)
      base.problem = "checkpoint " + shape_text(info.shape) + " cannot split in " +
                     std::to_string(parts) + " along dim " + std::to_string(rule.split_dim);
    else
      base.shape[rule.split_dim] /= parts;
  }
  if (rule.stack_capture > 0) {
    const auto k = static_cast<size_t>(rule.stack_capture);
    if (k >= captures.size())
      throw MappingError("rule `" + rule.from + "`: stack_capture " + std::to_string(k) +
                         " is not a capture");
    try {
      base.index = std::stoll(captures[k]);
    } catch (const std::exception&) {
      throw MappingError("rule `" + rule.from + "`: stack capture '" + captures[k] + "' of " +
                         info.name + " is not a number");
    }
  }
  std::vector<std::pair<std::string, Piece>> out;
  for (int64_t p = 0; p < parts; ++p) {
    Piece piece = base;
    piece.part = p;
    if (!rule.split_sizes.empty() && piece.problem.empty())
      piece.shape[rule.split_dim] = rule.split_sizes[static_cast<size_t>(p)];
    out.emplace_back(expand(rule.to[static_cast<size_t>(p)], captures), piece);
  }
  return out;
}

// "decoder.0.mlp.up.weight (from transformer.h.0.mlp.c_fc.weight)", or the name alone when
// the checkpoint uses the parameter's own name.
std::string from(const std::string& target, const Piece& piece) {
  return piece.source == target ? target : target + " (from " + piece.source + ")";
}

// Whether a safetensors dtype holds floating-point numbers (F64 ... F8_E5M2, BF16).
bool floating(const std::string& dtype) { return dtype[0] == 'F' || dtype == "BF16"; }

// Checks the pieces aimed at one parameter; adds problems to `report`.
void check_target(const std::string& name, const at::Tensor& target,
                  const std::vector<Piece>& pieces, bool allow_kind_change, LoadReport& report) {
  const auto model = target.sizes().vec();
  bool stacked = pieces.front().index >= 0;
  for (const auto& piece : pieces)
    if (!piece.problem.empty())
      report.mismatched.push_back(from(name, piece) + ": " + piece.problem);
  // Integers or booleans loading into a float parameter are almost always the wrong tensor
  // (token ids, a mask, an index buffer) and would load as numbers without a word.
  if (!allow_kind_change && target.is_floating_point())
    for (const auto& piece : pieces)
      if (const TensorInfo* info = piece.file->find(piece.source);
          info && !floating(info->dtype))
        report.mismatched.push_back(from(name, piece) + ": checkpoint dtype " + info->dtype +
                                    " is not floating point, the model's " +
                                    c10::toString(target.scalar_type()) +
                                    " is (Mapping::allow_kind_change converts)");
  if (!stacked) {
    if (pieces.size() > 1) {
      std::string sources;
      for (const auto& p : pieces) sources += (sources.empty() ? "" : ", ") + p.source;
      report.mismatched.push_back(name + ": mapped from several checkpoint tensors (" + sources +
                                  ")");
    } else if (pieces.front().problem.empty() && pieces.front().shape != model) {
      report.mismatched.push_back(from(name, pieces.front()) + ": checkpoint " +
                                  shape_text(pieces.front().shape) + ", model " +
                                  shape_text(model));
    }
    return;
  }
  if (model.empty()) {
    report.mismatched.push_back(name + ": stacked from " + pieces.front().source +
                                ", but the model's is a scalar");
    return;
  }
  const std::vector<int64_t> slice(model.begin() + 1, model.end());
  std::map<int64_t, const Piece*> seen;
  for (const auto& piece : pieces) {
    if (piece.index < 0 || piece.index >= model[0]) {
      report.mismatched.push_back(name + " (from " + piece.source + "): index " +
                                  std::to_string(piece.index) + " outside the model's " +
                                  std::to_string(model[0]));
    } else if (!seen.emplace(piece.index, &piece).second) {
      report.mismatched.push_back(name + "[" + std::to_string(piece.index) +
                                  "]: mapped from both " + seen[piece.index]->source + " and " +
                                  piece.source);
    } else if (piece.problem.empty() && piece.shape != slice) {
      report.mismatched.push_back(name + "[" + std::to_string(piece.index) + "] (from " +
                                  piece.source + "): checkpoint " + shape_text(piece.shape) +
                                  ", model " + shape_text(slice));
    }
  }
  for (int64_t i = 0; i < model[0]; ++i)
    if (!seen.count(i)) report.missing.push_back(name + "[" + std::to_string(i) + "]");
}

// The checkpoint tensor of `piece` in the target's layout (a view where possible).
at::Tensor materialize(const Piece& piece) {
  at::Tensor t = piece.file->tensor(piece.source);
  const MappingRule& rule = *piece.rule;
  if (rule.transpose) t = t.t();
  if (rule.slice) t = t.narrow(rule.slice_dim, rule.slice_start, rule.slice_end - rule.slice_start);
  if (rule.rotary != MappingRule::Rotary::none) t = rotary_permute(t, rule.head_size, rule.rotary);
  const auto parts = static_cast<int64_t>(piece.rule->to.size());
  if (!rule.split_sizes.empty())
    t = t.split_with_sizes(rule.split_sizes, rule.split_dim)[piece.part];
  else if (parts > 1)
    t = t.chunk(parts, piece.rule->split_dim)[piece.part];
  return t;
}

// Where `piece` goes in `target`: all of it, or its slice along dim 0 for a stacked piece;
// nullopt for a stack index outside the target (reported by check_target).
std::optional<at::Tensor> destination_of(const Piece& piece, const at::Tensor& target) {
  if (piece.index < 0) return target;
  if (target.dim() == 0 || piece.index >= target.size(0)) return std::nullopt;
  return target[piece.index];
}

// Whether `rule` copies a checkpoint tensor as it is (renamed, maybe stacked or converted).
bool plain(const MappingRule& rule) {
  return !rule.transpose && !rule.slice && rule.rotary == MappingRule::Rotary::none &&
         rule.to.size() == 1;
}

// A checkpoint tensor for an output matrix the model ties to `tied` (its embeddings): fine
// when it equals the tensor `tied` loads from, else a mismatch (the model would silently use
// other weights than the checkpoint's head).
void check_tied(const Piece& piece, const std::string& tied, const std::vector<Piece>& partners,
                LoadReport& report) {
  const std::string what = piece.source + " (the model ties it to " + tied + ")";
  if (partners.size() != 1 || !partners.front().problem.empty() || !piece.problem.empty())
    return;  // the partner's own problems are reported with it
  const Piece& partner = partners.front();
  if (piece.shape != partner.shape) {
    report.mismatched.push_back(what + ": checkpoint " + shape_text(piece.shape) + ", " +
                                partner.source + " " + shape_text(partner.shape));
    return;
  }
  c10::NoGradGuard no_grad;
  const at::Tensor a = materialize(piece), b = materialize(partner);
  const bool same = a.scalar_type() == b.scalar_type() ? at::equal(a, b)
                                                       : at::equal(a, b.to(a.scalar_type()));
  piece.file->release(piece.source);
  partner.file->release(partner.source);
  if (!same)
    report.mismatched.push_back(what + ": differs from " + partner.source +
                                "; untie the model's head to load both");
}

// "model." for "model" or "model."; empty stays empty.
std::string prefix_of(const Mapping& mapping) {
  std::string p = mapping.relevant_module;
  if (!p.empty() && p.back() != '.') p += '.';
  return p;
}

}  // namespace

at::Tensor rotary_permute(const at::Tensor& t, int64_t head_size, MappingRule::Rotary rotary,
                          bool inverse) {
  if (rotary == MappingRule::Rotary::none) return t;
  if (t.dim() == 0 || head_size <= 0 || head_size % 2 != 0 || t.size(0) % head_size != 0)
    throw MappingError("cannot permute " + shape_text(t.sizes().vec()) + " in rotary heads of " +
                       std::to_string(head_size));
  const bool to_half = (rotary == MappingRule::Rotary::interleaved_to_half) != inverse;
  const int64_t heads = t.size(0) / head_size;
  std::vector<int64_t> view = {heads, to_half ? head_size / 2 : 2, to_half ? 2 : head_size / 2};
  const auto rest = t.sizes().slice(1);
  view.insert(view.end(), rest.begin(), rest.end());
  return t.reshape(view).transpose(1, 2).reshape(t.sizes());
}

namespace {

// The weight_map of a model.safetensors.index.json: tensor -> shard, each shard a plain file name
// inside the folder (the index is data from anywhere: `../x` or `/etc/passwd` are refused), no
// tensor listed twice (JSON readers keep the last of duplicate keys silently).
std::map<std::string, std::string> read_weight_map(const std::filesystem::path& index) {
  std::ifstream in(index);
  if (!in) throw MappingError(index.string() + ": cannot open");
  std::string top;
  std::vector<std::string> duplicates;
  std::set<std::string> keys;
  const auto track = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& value) {
    if (event == nlohmann::json::parse_event_t::key) {
      if (depth == 1) top = value.get<std::string>();
      if (depth == 2 && top == "weight_map" && !keys.insert(value.get<std::string>()).second)
        duplicates.push_back(value.get<std::string>());
    }
    return true;
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in, track);
  } catch (const std::exception& e) {
    throw MappingError(index.string() + ": " + e.what());
  }
  if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object())
    throw MappingError(index.string() + ": no `weight_map` object");
  if (!duplicates.empty())
    throw MappingError(index.string() + ": weight_map lists " + duplicates.front() +
                       " more than once");
  std::map<std::string, std::string> map;
  for (const auto& [tensor, file] : json["weight_map"].items()) {
    if (!file.is_string())
      throw MappingError(index.string() + ": weight_map." + tensor + " is not a file name");
    const std::string name = file.get<std::string>();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\\') != std::string::npos)
      throw MappingError(index.string() + ": weight_map." + tensor + " names `" + name +
                         "`, which is not a file in the folder");
    map.emplace(tensor, name);
  }
  return map;
}

}  // namespace

std::vector<std::string> checkpoint_files(const std::string& folder, std::string* note) {
  namespace fs = std::filesystem;
  const fs::path dir(folder);
  const fs::path index = dir / "model.safetensors.index.json";
  const fs::path single = dir / "model.safetensors";
  // transformers' from_pretrained looks for model.safetensors before the index: a folder holding
  // both loads the single file there, so it does here, and says so.
  if (fs::exists(single)) {
    if (note && fs::exists(index))
      *note = folder + " holds both model.safetensors and model.safetensors.index.json: loading "
                       "model.safetensors, as transformers does";
    return {single.string()};
  }
  if (!fs::exists(index))
    throw MappingError(folder + ": neither model.safetensors.index.json nor model.safetensors");
  const auto map = read_weight_map(index);
  std::map<std::string, std::set<std::string>> listed;  // shard -> tensors the index puts there
  std::vector<std::string> files;
  for (const auto& [tensor, shard] : map)
    if (listed[shard].insert(tensor).second && listed[shard].size() == 1)
      files.push_back((dir / shard).string());
  // The index must list exactly what the shards hold: a phantom entry would be reported as
  // missing only later and far from its cause, an unlisted tensor silently skipped by readers
  // that follow the index.
  for (const auto& [shard, tensors] : listed) {
    const auto file = SafetensorsFile::open((dir / shard).string());
    for (const auto& tensor : tensors)
      if (!file.find(tensor))
        throw MappingError(index.string() + ": weight_map puts " + tensor + " in " + shard +
                           ", which does not hold it");
    for (const auto& info : file.tensors())
      if (!tensors.count(info.name))
        throw MappingError(index.string() + ": " + shard + " holds " + info.name +
                           ", which weight_map " +
                           (map.count(info.name) ? "puts in " + map.at(info.name) : "does not list"));
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct MappedLoad::State {
  std::vector<std::pair<std::string, at::Tensor>> parameters;
  std::vector<SafetensorsFile> opened;
  std::map<std::string, std::vector<Piece>> by_target;
  LoadReport report;
};

MappedLoad::MappedLoad(const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                       const std::vector<std::string>& files, const Mapping& mapping)
    : state_(std::make_unique<State>()) {
  State& st = *state_;
  st.parameters = parameters;
  const auto rules = compile(mapping);
  st.opened.reserve(files.size());
  for (const auto& path : files) st.opened.push_back(SafetensorsFile::open(path));

  LoadReport& report = st.report;
  auto& by_target = st.by_target;
  std::set<std::string> sources;
  const std::string prefix = prefix_of(mapping);
  for (const auto& file : st.opened)
    for (const auto& info : file.tensors()) {
      if (!sources.insert(info.name).second) {
        report.mismatched.push_back(info.name + ": in several files");
        continue;
      }
      if (info.name.compare(0, prefix.size(), prefix) != 0) continue;  // outside relevant_module
      const std::string name = info.name.substr(prefix.size());
      std::vector<std::string> captures;
      const CompiledRule* hit = nullptr;
      for (const auto& rule : rules)
        if (matches(mapping, rule.from, name, &captures)) {
          hit = &rule;
          break;
        }
      if (!hit) {
        report.unexpected.push_back(info.name + " (no rule of " + mapping.name + " maps it)");
        continue;
      }
      if (hit->rule->ignore()) continue;
      if (mapping.layers && hit->rule->layer_capture > 0) {
        const auto k = static_cast<size_t>(hit->rule->layer_capture);
        if (k >= captures.size())
          throw MappingError("rule `" + hit->rule->from + "`: layer_capture " + std::to_string(k) +
                             " is not a capture");
        int64_t layer = 0;
        try {
          layer = std::stoll(captures[k]);
        } catch (const std::exception&) {
          throw MappingError("rule `" + hit->rule->from + "`: layer capture '" + captures[k] +
                             "' of " + info.name + " is not a number");
        }
        if (layer < mapping.layers->from || layer > mapping.layers->to) continue;  // not wanted
        captures[k] = std::to_string(layer + mapping.layers->offset);
      }
      for (auto& [target, piece] : pieces_of(info, file, *hit->rule, captures))
        by_target[target].push_back(std::move(piece));
    }

  std::set<std::string> wanted;
  for (const auto& [name, target] : parameters) {
    wanted.insert(name);
    auto it = by_target.find(name);
    if (it == by_target.end()) {
      report.missing.push_back(name);
      continue;
    }
    check_target(name, target, it->second, mapping.allow_kind_change, report);
  }
  for (const auto& [target, pieces] : by_target) {
    if (wanted.count(target)) continue;
    for (const auto& piece : pieces) {
      const std::string& tied = piece.rule->tied_to;
      auto partner = tied.empty() || !wanted.count(tied) ? by_target.end() : by_target.find(tied);
      if (partner == by_target.end() && piece.source == target)
        report.unexpected.push_back(target);
      else if (partner == by_target.end())
        report.unexpected.push_back(piece.source + " (as " + target + ", which the model lacks)");
      else
        check_tied(piece, tied, partner->second, report);
    }
  }
  name_ = mapping.name;
}

MappedLoad::~MappedLoad() = default;
MappedLoad::MappedLoad(MappedLoad&&) noexcept = default;

const LoadReport& MappedLoad::report() const { return state_->report; }

void MappedLoad::throw_if_strict_fails() const {
  if (!state_->report.ok())
    throw LoadError("the checkpoint does not fit the model" +
                        (name_.empty() ? "" : " (mapping " + name_ + ")") + ":\n" +
                        state_->report.format(),
                    state_->report);
}

size_t MappedLoad::pieces(size_t i) const {
  const auto& [name, target] = state_->parameters.at(i);
  auto it = state_->by_target.find(name);
  if (it == state_->by_target.end()) return 0;
  size_t n = 0;
  for (const auto& piece : it->second) {
    if (!piece.problem.empty()) continue;
    if (auto destination = destination_of(piece, target);
        destination && destination->sizes().vec() == piece.shape)
      ++n;
  }
  return n;
}

size_t MappedLoad::fill(size_t i) {
  const auto& [name, target] = state_->parameters.at(i);
  auto it = state_->by_target.find(name);
  if (it == state_->by_target.end()) return 0;
  c10::NoGradGuard no_grad;
  size_t copied = 0;
  for (const auto& piece : it->second) {
    if (!piece.problem.empty()) continue;
    auto found = destination_of(piece, target);
    if (!found || found->sizes().vec() != piece.shape) continue;  // reported, not strict
    at::Tensor destination = *found;
    bool finite = true;
    if (plain(*piece.rule)) {
      // Chunk by chunk with pages given back: no second copy, whatever the dtypes.
      finite = piece.file->copy_into(piece.source, destination);
    } else {
      // A transform needs the whole tensor: at most one checkpoint tensor is resident.
      destination.copy_(materialize(piece));
      finite = !destination.is_floating_point() || at::isfinite(destination).all().item<bool>();
      // The view is gone: its file pages stop counting toward memory (the other parts of a
      // split tensor map them again from the file).
      piece.file->release(piece.source);
    }
    if (!finite) state_->report.non_finite.push_back(from(name, piece));
    ++copied;
  }
  return copied;
}

LoadReport load_mapped(const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                       const std::vector<std::string>& files, const Mapping& mapping, bool strict,
                       const std::function<void(size_t, size_t)>& progress) {
  MappedLoad plan(parameters, files, mapping);
  if (strict) plan.throw_if_strict_fails();
  LoadReport report = plan.report();
  size_t total = 0, done = 0;
  for (const auto& [name, target] : parameters) total += target.nbytes();
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (progress) progress(done, total);
    done += parameters[i].second.nbytes();
    report.loaded += static_cast<int64_t>(plan.fill(i));
  }
  if (progress) progress(total, total);
  // NaN or Inf weights give NaN logits that nothing else would explain.
  report.non_finite = plan.report().non_finite;
  if (strict && !report.non_finite.empty())
    throw LoadError("the checkpoint holds non-finite values (NaN or Inf):\n" + report.format(),
                    report);
  return report;
}

const Mapping& identity_mapping() {
  static const Mapping identity = [] {
    MappingRule rule;
    rule.from = "(.*)";
    rule.to = {"$1"};
    return Mapping{"", {rule}};
  }();
  return identity;
}

std::string ExportPlace::checkpoint_name(int64_t index) const {
  auto filled = captures;
  if (index >= 0) filled[static_cast<size_t>(rule->stack_capture)] = std::to_string(index);
  return prefix + fill_from(*rule, filled);
}

ExportPlace export_place(const std::string& parameter, const Mapping& mapping) {
  for (const auto& rule : mapping.rules)
    for (size_t slot = 0; slot < rule.to.size(); ++slot) {
      std::vector<size_t> numbers;
      const NamePattern pattern = template_regex(rule.to[slot], numbers);
      std::vector<std::string> match;
      if (!matches(mapping, pattern, parameter, &match)) continue;
      if (rule.slice)
        throw MappingError(mapping.name + ": " + parameter + " comes from a slice of `" +
                           rule.from +
                           "`, which cannot be exported (the rest of the tensor is unknown)");
      ExportPlace place;
      place.rule = &rule;
      place.part = slot;
      place.prefix = prefix_of(mapping);
      for (size_t i = 0; i < numbers.size(); ++i) place.captures.emplace(numbers[i], match[i + 1]);
      // The other parts share the captures.
      std::vector<std::string> numbered(
          place.captures.empty() ? 1 : place.captures.rbegin()->first + 1);
      for (const auto& [n, v] : place.captures) numbered[n] = v;
      for (const auto& part : rule.to) place.parts.push_back(expand(part, numbered));
      if (mapping.layers && rule.layer_capture > 0) {
        auto it = place.captures.find(static_cast<size_t>(rule.layer_capture));
        if (it != place.captures.end())
          it->second = std::to_string(std::stoll(it->second) - mapping.layers->offset);
      }
      return place;
    }
  throw MappingError(mapping.name + ": no rule produces " + parameter +
                     ", so it cannot be exported");
}

std::vector<std::pair<std::string, at::Tensor>> export_mapped(
    const std::vector<std::pair<std::string, at::Tensor>>& parameters, const Mapping& mapping) {
  std::map<std::string, at::Tensor> by_name(parameters.begin(), parameters.end());
  std::vector<std::pair<std::string, at::Tensor>> out;
  std::set<std::string> made;
  auto emit = [&](const ExportPlace& place, int64_t index, at::Tensor tensor) {
    std::string name = place.checkpoint_name(index);
    if (!matches(mapping, NamePattern(place.rule->from), name.substr(place.prefix.size()),
                 nullptr))
      throw MappingError(mapping.name + ": exported name " + name + " does not match `" +
                         place.rule->from + "`");
    if (made.insert(name).second) out.emplace_back(std::move(name), std::move(tensor));
  };
  for (const auto& [name, tensor] : parameters) {
    const ExportPlace place = export_place(name, mapping);
    const MappingRule& rule = *place.rule;
    at::Tensor value = tensor.detach();
    if (rule.to.size() > 1) {
      std::vector<at::Tensor> parts;
      for (const auto& part_name : place.parts) {
        auto it = by_name.find(part_name);
        if (it == by_name.end())
          throw MappingError(mapping.name + ": " + name + " is split from `" + rule.from +
                             "`, but its part " + part_name + " is not among the parameters");
        parts.push_back(it->second.detach());
      }
      value = at::cat(parts, rule.split_dim);
    }
    if (rule.rotary != MappingRule::Rotary::none)
      value = rotary_permute(value, rule.head_size, rule.rotary, /*inverse=*/true);
    if (rule.transpose) value = value.t();
    if (rule.stack_capture > 0) {
      for (int64_t e = 0; e < value.size(0); ++e) emit(place, e, value[e]);
    } else {
      emit(place, -1, value);
    }
  }
  return out;
}

}  // namespace blocks::weights
