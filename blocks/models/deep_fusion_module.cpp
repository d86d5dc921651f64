#include "blocks/models/deep_fusion_module.h"

#include <algorithm>

#include "blocks/models/fusion_tokens_module.h"

namespace blocks {

namespace {

const char* kMemoryMask = "memory_mask";
const char* kTiledMask = "cross_attention_mask";

}  // namespace

DeepFusionModel::DeepFusionModel(const DeepFusionConfig& c, Builder& b, const std::string& path)
    : config_(c),
      path_(path),
      item_tokens_(c.encoder.tokens),
      memory_width_(c.encoder.output_width()),
      after_(c.fusion_layers.placement == "after") {
  decoder = register_module("decoder",
                            b.build_as<LanguageModel>(*c.decoder, child_path(c, path, *c.decoder)));
  const std::string encoder_path = child_path(c, path, c.encoder);
  auto holder = register_module("encoder", std::make_shared<torch::nn::Module>());
  encoder = holder->register_module(
      "encoder", b.build_as<EncoderModule>(*c.encoder.encoder,
                                           child_path(c.encoder, encoder_path, *c.encoder.encoder)));
  if (!c.encoder.connectors.empty()) {
    auto list = holder->register_module("connectors", std::make_shared<torch::nn::Module>());
    for (size_t i = 0; i < c.encoder.connectors.size(); ++i)
      connectors.push_back(list->register_module(
          std::to_string(i),
          b.build_as<ConnectorModule>(
              *c.encoder.connectors[i],
              child_path(c.encoder, encoder_path, *c.encoder.connectors[i]))));
  }
  input_name_ = encoder->input().name;
  const std::string layers_path = child_path(c, path, c.fusion_layers);
  const BlockConfig& block = *c.fusion_layers.block;
  auto list = register_module("fusion_layers", std::make_shared<torch::nn::Module>());
  for (int64_t layer : c.fusion_layers.at)
    fusion_layers[layer] = list->register_module(
        std::to_string(layer),
        b.build_as<BlockModule>(block, child_path(c.fusion_layers, layers_path, block)));
  if (c.fusion_embedding)
    fusion_embedding = register_module(
        "fusion_embedding",
        b.build_as<Weight>(*c.fusion_embedding, child_path(c, path, *c.fusion_embedding)));
}

std::vector<InputSpec> DeepFusionModel::inputs() const {
  using Type = InputSpec::Type;
  InputSpec media = encoder->input();
  media.rank += 1;
  media.required = false;
  media.doc = "per batch row: [batch, items, ...] of " + media.doc +
              "; their features are the memory of the fusion layers (" +
              std::to_string(item_tokens_) + " vectors of " + std::to_string(memory_width_) +
              " per item)";
  return {{"tokens", Type::integer, 2, true, "", "token ids [batch, tokens]"},
          {"attention_mask", Type::mask, 2, false, "",
           "[batch, cached + new tokens]: 1 for real tokens, 0 for padding"},
          {"positions", Type::integer, 2, false, "", "absolute positions [batch, tokens]"},
          media,
          {kMemoryMask, Type::mask, 3, false, "",
           "[batch, tokens, memory tokens]: 1 where a token may attend to a memory vector"},
          {kTiledMask, Type::mask, 4, false, "",
           "[batch, tokens, images, tiles] (Hugging Face mllama's): 1 where a token may attend "
           "to a tile; each tile is one item of " + std::to_string(item_tokens_) +
               " memory vectors"}};
}

std::vector<std::string> DeepFusionModel::hidden_state_names() const {
  std::vector<std::string> names = decoder->hidden_state_names();
  names.push_back("encoder");
  return names;
}

at::Tensor DeepFusionModel::given_mask(const ModelInput& input, int64_t batch, int64_t tokens,
                                       int64_t memory_tokens) const {
  const auto plain = input.named.find(kMemoryMask);
  const auto tiled = input.named.find(kTiledMask);
  const bool has_plain = plain != input.named.end(), has_tiled = tiled != input.named.end();
  if (has_plain && has_tiled)
    throw InputError(path_, std::string("give ") + kMemoryMask + " or " + kTiledMask +
                                ", not both");
  if (!has_plain && !has_tiled) return {};
  const std::string items = std::to_string(memory_tokens / std::max<int64_t>(item_tokens_, 1));
  if (has_plain) {
    const at::Tensor& m = plain->second;
    if (m.sizes() != at::IntArrayRef{batch, tokens, memory_tokens})
      throw InputError(path_, std::string(kMemoryMask) + " must be [" + std::to_string(batch) +
                                  ", " + std::to_string(tokens) + ", " +
                                  std::to_string(memory_tokens) +
                                  "] (batch, tokens, memory tokens), got " +
                                  c10::str(m.sizes()));
    return m.to(at::kBool);
  }
  const at::Tensor& m = tiled->second;
  if (m.size(0) != batch || m.size(1) != tokens ||
      m.size(2) * m.size(3) * item_tokens_ != memory_tokens)
    throw InputError(path_, std::string(kTiledMask) + " must be [" + std::to_string(batch) +
                                ", " + std::to_string(tokens) +
                                ", images, tiles] with images x tiles = " + items +
                                " (the items of the memory), got " + c10::str(m.sizes()));
  return m.to(at::kBool).flatten(2, 3).repeat_interleave(item_tokens_, 2);
}

ModelOutput DeepFusionModel::forward(const ModelInput& input) {
  check_inputs(input, path_);
  const int64_t batch = input.tokens.size(0), tokens = input.tokens.size(1);
  ModelInput inner;
  inner.embeddings =
      fused_token_embeddings(*decoder, fusion_embedding.get(), input.tokens, path_);
  DecodeCache::State* saved = input.cache ? &input.cache->state(path_ + "|memory") : nullptr;
  Memory memory;
  int64_t memory_tokens = 0;
  if (const auto media = input.named.find(input_name_); media != input.named.end()) {
    const at::Tensor& m = media->second;
    if (m.size(0) != batch)
      throw InputError(path_, input_name_ + " holds " + std::to_string(m.size(0)) +
                                  " batch rows, the tokens " + std::to_string(batch));
    const int64_t items = m.size(1);
    at::Tensor f = encoder->forward(m.flatten(0, 1));
    for (const auto& connector : connectors) f = connector->forward(f);
    if (f.dim() != 3 || f.size(1) != item_tokens_ || f.size(2) != memory_width_)
      throw InputError(path_, "the encoder gave features of shape " + c10::str(f.sizes()) +
                                  ", not [" + std::to_string(batch * items) + ", " +
                                  std::to_string(item_tokens_) + ", " +
                                  std::to_string(memory_width_) + "]");
    memory_tokens = items * item_tokens_;
    memory.values = f.reshape({batch, memory_tokens, memory_width_}).to(inner.embeddings.device());
  } else if (saved && saved->count("length")) {
    memory_tokens = saved->at("length").item<int64_t>();
  }
  const bool active = memory_tokens > 0;
  if (!active && (input.named.count(kMemoryMask) || input.named.count(kTiledMask)))
    throw InputError(path_, "a memory mask was given, but no " + input_name_ +
                                (input.cache ? " and the decoding cache holds no memory" : ""));
  at::Tensor mask = given_mask(input, batch, tokens, memory_tokens);
  if (mask.defined()) mask = mask.to(inner.embeddings.device());
  if (saved && active) {
    (*saved)["length"] = at::scalar_tensor(memory_tokens, at::kLong);
    if (mask.defined())
      (*saved)["mask"] = mask.select(1, mask.size(1) - 1);  // [batch, memory]: every token
    else if (memory.values.defined())
      saved->erase("mask");
    else if (saved->count("mask"))
      mask = saved->at("mask");
  }
  memory.mask = mask;
  inner.attention_mask = input.attention_mask;
  inner.positions = input.positions;
  inner.cache = input.cache;
  inner.logits_to_keep = input.logits_to_keep;
  inner.memories = input.memories;
  inner.memories[std::string(DeepFusionConfig::memory_name)] = memory;
  for (const auto& name : input.hidden_states)
    if (name != "encoder") inner.hidden_states.push_back(name);
  ModelOutput out = active ? decoder->forward(inner, this) : decoder->forward(inner);
  if (memory.values.defined() &&
      std::find(input.hidden_states.begin(), input.hidden_states.end(), "encoder") !=
          input.hidden_states.end())
    out.hidden_states["encoder"] = memory.values;
  return out;
}

at::Tensor DeepFusionModel::run_fusion(int64_t layer, const at::Tensor& x, Step& step) {
  const auto found = fusion_layers.find(layer);
  if (found == fusion_layers.end()) return x;
  const std::string outer = step.layer;
  step.layer = "fusion_layers." + std::to_string(layer);
  at::Tensor y = found->second->forward(x, step);
  step.layer = outer;
  return y;
}

at::Tensor DeepFusionModel::before(int64_t layer, const at::Tensor& x, Step& step) {
  return after_ ? x : run_fusion(layer, x, step);
}

at::Tensor DeepFusionModel::after(int64_t layer, const at::Tensor& x, Step& step) {
  return after_ ? run_fusion(layer, x, step) : x;
}

void register_modules_deep_fusion(nn::ModuleRegistry& modules) {
  modules.add<DeepFusionConfig>([](const DeepFusionConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<DeepFusionModel>(c, b, path);
  });
}

}  // namespace blocks
