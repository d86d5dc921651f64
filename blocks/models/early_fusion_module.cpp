#include "blocks/models/early_fusion_module.h"

#include "blocks/models/fusion_tokens_module.h"

#include <algorithm>
#include <numeric>

namespace blocks {
namespace {

std::string range_text(int64_t first, int64_t end) {
  return "[" + std::to_string(first) + ", " + std::to_string(end) + ")";
}

}  // namespace

EarlyFusionModel::EarlyFusionModel(const EarlyFusionConfig& c, Builder& b, const std::string& path)
    : config_(c), path_(path) {
  decoder = register_module("decoder",
                            b.build_as<LanguageModel>(*c.decoder, child_path(c, path, *c.decoder)));
  // Submodule names cannot hold dots: encoders.NAME.{encoder,connectors.I} are nested holders.
  auto holder = register_module("encoders", std::make_shared<torch::nn::Module>());
  std::map<std::string, int> input_users;
  for (const auto& [name, entry] : c.encoders) {
    const std::string entry_path = child_path(c, path, entry);
    Part part;
    auto own = holder->register_module(name, std::make_shared<torch::nn::Module>());
    part.encoder = own->register_module(
        "encoder", b.build_as<EncoderModule>(*entry.encoder,
                                             child_path(entry, entry_path, *entry.encoder)));
    if (!entry.connectors.empty()) {
      auto list = own->register_module("connectors", std::make_shared<torch::nn::Module>());
      for (size_t i = 0; i < entry.connectors.size(); ++i)
        part.connectors.push_back(list->register_module(
            std::to_string(i),
            b.build_as<ConnectorModule>(*entry.connectors[i],
                                        child_path(entry, entry_path, *entry.connectors[i]))));
    }
    part.tokens = entry.tokens;
    part.placeholder = c.encoder_tokens.at(name);
    if (auto it = c.begin_tokens.find(name); it != c.begin_tokens.end()) part.begin = it->second;
    if (auto it = c.end_tokens.find(name); it != c.end_tokens.end()) part.end = it->second;
    part.input = part.encoder->input().name;
    ++input_users[part.input];
    parts.emplace(name, std::move(part));
  }
  for (auto& [name, part] : parts)
    if (input_users[part.input] > 1) part.input = name + "." + part.input;
  if (c.fusion_embedding)
    fusion_embedding = register_module(
        "fusion_embedding",
        b.build_as<Weight>(*c.fusion_embedding, child_path(c, path, *c.fusion_embedding)));
}

std::vector<InputSpec> EarlyFusionModel::inputs() const {
  using Type = InputSpec::Type;
  std::vector<InputSpec> out = {
      {"tokens", Type::integer, 2, true, "",
       "token ids [batch, tokens], each media item's placeholders in place"},
      {"attention_mask", Type::mask, 2, false, "",
       "[batch, cached + new tokens]: 1 for real tokens, 0 for padding"},
      {"positions", Type::integer, 2, false, "", "absolute positions [batch, tokens]"}};
  for (const auto& [name, part] : parts) {
    InputSpec spec = part.encoder->input();
    spec.name = part.input;
    spec.required = false;
    spec.doc += " for encoder '" + name + "', one item per run of " +
                std::to_string(part.tokens) + " placeholders (token " +
                std::to_string(part.placeholder) + ")";
    out.push_back(std::move(spec));
  }
  return out;
}

std::vector<std::string> EarlyFusionModel::hidden_state_names() const {
  std::vector<std::string> names = decoder->hidden_state_names();
  for (const auto& [name, part] : parts) names.push_back("encoders." + name);
  return names;
}

at::Tensor EarlyFusionModel::placeholder_indices(const std::string& name, const Part& part,
                                                 const at::Tensor& tokens, int64_t items) const {
  const int64_t batch = tokens.size(0), length = tokens.size(1);
  const auto ids = tokens.accessor<int64_t, 2>();
  const std::string who = "encoder '" + name + "'";
  const std::string run_text = std::to_string(part.tokens) + " placeholders (token " +
                               std::to_string(part.placeholder) + ")";
  const bool marked = part.begin || part.end;
  std::vector<int64_t> flat;
  int64_t item = 0;
  for (int64_t row = 0; row < batch; ++row) {
    for (int64_t t = 0; t < length;) {
      const int64_t id = ids[row][t];
      if (id != part.placeholder) {
        const bool opens = part.begin && id == *part.begin;
        const bool closes = part.end && id == *part.end;
        if (opens && (t + 1 >= length || ids[row][t + 1] != part.placeholder))
          throw InputError(path_, "batch row " + std::to_string(row) + ", token " +
                                      std::to_string(t) + ": the begin marker " +
                                      std::to_string(id) + " of " + who +
                                      " is not followed by its placeholders");
        if (closes && (t == 0 || ids[row][t - 1] != part.placeholder))
          throw InputError(path_, "batch row " + std::to_string(row) + ", token " +
                                      std::to_string(t) + ": the end marker " + std::to_string(id) +
                                      " of " + who + " does not follow placeholders");
        ++t;
        continue;
      }
      const int64_t first = t;
      while (t < length && ids[row][t] == part.placeholder) ++t;
      const int64_t run = t - first;
      const std::string where = "batch row " + std::to_string(row) + ", tokens " +
                                range_text(first, t) + ": ";
      // Without markers, items may sit back to back: one run holds several whole items.
      if (run % part.tokens != 0 || (marked && run != part.tokens))
        throw InputError(
            path_, where + "a run of " + std::to_string(run) + " placeholders, but media item " +
                       std::to_string(item) + " of " + who + " fills exactly " + run_text +
                       (run < part.tokens ? " (too few placeholders, or a run split in two)"
                                          : marked ? " between its markers"
                                                   : ", or a whole multiple for items back to back"));
      if (part.begin && (first == 0 || ids[row][first - 1] != *part.begin))
        throw InputError(path_, where + "media item " + std::to_string(item) + " of " + who +
                                    " is not preceded by its begin marker " +
                                    std::to_string(*part.begin));
      if (part.end && (t >= length || ids[row][t] != *part.end))
        throw InputError(path_, where + "media item " + std::to_string(item) + " of " + who +
                                    " is not followed by its end marker " +
                                    std::to_string(*part.end));
      const int64_t count = run / part.tokens;
      if (item + count > items)
        throw InputError(path_, where + "placeholders for media item " + std::to_string(item) +
                                    (count > 1 ? "-" + std::to_string(item + count - 1) : "") +
                                    " of " + who + ", but " + std::to_string(items) +
                                    (items == 1 ? " item was" : " items were") + " given");
      for (int64_t k = first; k < t; ++k) flat.push_back(row * length + k);
      item += count;
    }
  }
  if (item < items)
    throw InputError(path_, std::to_string(items) + " media items were given to " + who +
                                ", but the tokens hold placeholders for " + std::to_string(item) +
                                ": media item " + std::to_string(item) + " has no run of " +
                                run_text);
  return at::tensor(flat, at::kLong);
}

at::Tensor EarlyFusionModel::embed(const at::Tensor& tokens,
                                   const std::map<std::string, at::Tensor>& media,
                                   std::map<std::string, at::Tensor>* features) {
  at::Tensor host;
  at::Tensor x = fused_token_embeddings(*decoder, fusion_embedding.get(), tokens, path_, &host);
  const int64_t hidden = x.size(-1);
  for (const auto& [name, part] : parts) {
    const auto found = media.find(name);
    const at::Tensor items = found == media.end() ? at::Tensor() : found->second;
    const int64_t count = items.defined() ? items.size(0) : 0;
    const at::Tensor index = placeholder_indices(name, part, host, count);
    if (count == 0) continue;
    at::Tensor f = part.encoder->forward(items);
    for (const auto& connector : part.connectors) f = connector->forward(f);
    if (f.dim() != 3 || f.size(1) != part.tokens || f.size(2) != hidden)
      throw InputError(path_, "encoder '" + name + "' gave features of shape " +
                                  c10::str(f.sizes()) + ", not [" + std::to_string(count) + ", " +
                                  std::to_string(part.tokens) + ", " + std::to_string(hidden) +
                                  "]");
    if (features) (*features)[name] = f;
    x = x.reshape({-1, hidden})
            .index_copy(0, index.to(x.device()), f.reshape({-1, hidden}).to(x.scalar_type()))
            .view(x.sizes());
  }
  return x;
}

ModelOutput EarlyFusionModel::forward(const ModelInput& input) {
  check_inputs(input, path_);
  std::map<std::string, at::Tensor> media;
  for (const auto& [name, part] : parts)
    if (auto it = input.named.find(part.input); it != input.named.end()) media[name] = it->second;
  std::map<std::string, at::Tensor> features;
  const bool wants_features =
      std::any_of(input.hidden_states.begin(), input.hidden_states.end(),
                  [](const std::string& n) { return n.rfind("encoders.", 0) == 0; });
  ModelInput inner;
  inner.embeddings = embed(input.tokens, media, wants_features ? &features : nullptr);
  inner.attention_mask = input.attention_mask;
  inner.positions = input.positions;
  inner.memories = input.memories;
  inner.cache = input.cache;
  inner.logits_to_keep = input.logits_to_keep;
  for (const auto& name : input.hidden_states)
    if (name.rfind("encoders.", 0) != 0) inner.hidden_states.push_back(name);
  ModelOutput out = decoder->forward(inner);
  for (const auto& name : input.hidden_states)
    if (name.rfind("encoders.", 0) == 0)
      if (auto it = features.find(name.substr(9)); it != features.end())
        out.hidden_states[name] = it->second;
  return out;
}

at::Tensor expand_placeholders(const at::Tensor& tokens, int64_t placeholder, int64_t count) {
  if (tokens.dim() != 2)
    throw InputError("tokens", "must be [batch, tokens], got shape " + c10::str(tokens.sizes()));
  const at::Tensor host = tokens.to(at::kCPU, at::kLong).contiguous();
  const auto ids = host.accessor<int64_t, 2>();
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(host.size(0)));
  std::vector<int64_t> images(rows.size(), 0);
  for (int64_t r = 0; r < host.size(0); ++r)
    for (int64_t t = 0; t < host.size(1); ++t) {
      const int64_t id = ids[r][t];
      if (id == placeholder) ++images[r];
      rows[r].insert(rows[r].end(), id == placeholder ? count : 1, id);
    }
  const int64_t total = std::accumulate(images.begin(), images.end(), int64_t{0});
  if (total == 0)
    throw InputError("tokens", "hold no placeholder (token " + std::to_string(placeholder) +
                                   ") for the images to fill");
  for (size_t r = 1; r < rows.size(); ++r)
    if (images[r] != images[0])
      throw InputError("tokens", "row 0 holds " + std::to_string(images[0]) + " placeholders and row " +
                                     std::to_string(r) + " holds " + std::to_string(images[r]) +
                                     ": expanded, the rows would differ in length; give each row "
                                     "as many images, or tokens already expanded");
  std::vector<int64_t> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  return at::tensor(flat, at::kLong)
      .view({host.size(0), static_cast<int64_t>(rows[0].size())})
      .to(tokens.device());
}

void register_modules_early_fusion(nn::ModuleRegistry& modules) {
  modules.add<EarlyFusionConfig>(
      [](const EarlyFusionConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<EarlyFusionModel>(c, b, path);
      });
}

}  // namespace blocks
