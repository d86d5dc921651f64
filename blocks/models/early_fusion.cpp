#include "blocks/models/early_fusion.h"

#include <set>

#include "blocks/models/language_model.h"
#include "framework/config/parameters.h"

namespace blocks {

using config::Node;

void FusionEncoderConfig::declare(Fields<FusionEncoderConfig>& f) {
  f.add("encoder", &FusionEncoderConfig::encoder, "The encoder (a vision tower).").required();
  f.add("connectors", &FusionEncoderConfig::connectors,
        "Connectors after the encoder, in order; the last gives the decoder's width.");
  f.add("tokens", &FusionEncoderConfig::tokens,
        "Feature vectors one media item becomes: the placeholder tokens it replaces.",
        Hint::derived);
}

void FusionEncoderConfig::resolve(ResolveContext& ctx) {
  if (!encoder) return;
  int64_t width = encoder->output_width();
  int64_t count = encoder->output_tokens();
  for (auto& connector : connectors) {
    if (!connector) continue;
    connector->input_width = width;
    connector->output_width = connector->keeps_width() ? width : decoder_width;
    width = connector->output_width;
    count = connector->output_tokens(count);
  }
  tokens = count;
  if (!any_width && decoder_width > 0 && width != decoder_width)
    ctx.error(*this, connectors.empty() ? "encoder" : "connectors",
              "features of width " + std::to_string(width) + " reach the decoder, which takes " +
                  std::to_string(decoder_width) +
                  (connectors.empty() ? "; add a connector (e.g. {type: linear})" : ""));
}

int64_t FusionEncoderConfig::output_width() const {
  if (!encoder) return 0;
  int64_t width = encoder->output_width();
  for (const auto& connector : connectors)
    if (connector && !connector->keeps_width()) width = decoder_width;
  return width;
}

int64_t FusionEncoderConfig::output_tokens() const {
  if (!encoder) return 0;
  int64_t count = encoder->output_tokens();
  for (const auto& connector : connectors)
    if (connector) count = connector->output_tokens(count);
  return count;
}

void FusionEncoderConfig::enter(const config::Config& child, ResolveContext& child_ctx) const {
  if (&child == encoder.get()) {
    child_ctx.frozen = child_ctx.frozen || encoder_frozen;
    return;
  }
  child_ctx.frozen = child_ctx.frozen || connectors_frozen;
  // A connector works at its input's width (a resampler's attention).
  for (const auto& c : connectors)
    if (&child == c.get()) child_ctx.hidden_size = c->input_width;
}

std::vector<config::FlowStage> FusionEncoderConfig::flow() const {
  return {{.fields = {"encoder"}}, {.fields = {"connectors"}}};
}

void EarlyFusionConfig::declare(Fields<EarlyFusionConfig>& f) {
  using C = EarlyFusionConfig;
  f.add("decoder", &C::decoder,
        "The language model that takes the fused embeddings; it keeps its own parameter names.")
      .required();
  f.add("encoders", &C::encoders, "Encoders by name (`image`), each with its connectors.")
      .required();
  f.add("encoder_tokens", &C::encoder_tokens,
        "Placeholder token id of each encoder: each media item's features replace one run of "
        "that many placeholders (encoders.NAME.tokens). Keys as in encoders.")
      .required();
  f.add("begin_tokens", &C::begin_tokens,
        "Token id that must come right before each media run of an encoder (KOSMOS-1's "
        "<image>); optional per encoder.",
        Hint::optional);
  f.add("end_tokens", &C::end_tokens,
        "Token id that must come right after each media run (KOSMOS-1's </image>); optional "
        "per encoder.",
        Hint::optional);
  f.add("fusion_vocab_size", &C::fusion_vocab_size,
        "Extra token rows after the decoder's vocabulary, in the fusion embedding (placeholders "
        "and markers the decoder's table lacks); ids vocab_size.. vocab_size + this - 1.")
      .min(0);
  f.add("fusion_embedding", &C::fusion_embedding,
        "The extra rows [fusion_vocab_size, hidden_size]; only with fusion_vocab_size > 0.",
        Hint::optional);
  f.add("decoder_trainable", &C::decoder_trainable, "Whether the decoder's parameters train.",
        Hint::optional);
  f.add("encoders_trainable", &C::encoders_trainable,
        "Whether each encoder's parameters train (connectors excluded), by name; one boolean "
        "sets every encoder. Default: false (frozen towers, as torchtune's builders and "
        "LLaVA's training stages have them).",
        Hint::optional)
      .schema_also({{"type", "boolean"}});
  f.add("fusion_trainable", &C::fusion_trainable,
        "Whether the fusion parameters (connectors, fusion embedding) train.", Hint::optional);
  declare_lr_scale(f);
}

void EarlyFusionConfig::preprocess(Node& node, config::ParseContext&) {
  Node* trainable = node.find("encoders_trainable");
  const Node* encoders = node.find("encoders");
  if (!trainable || !trainable->is_scalar() || !encoders || !encoders->is_mapping()) return;
  Node expanded = Node::mapping(trainable->mark);
  for (const auto& e : encoders->entries) expanded.set(e.key, *trainable, trainable->mark);
  *trainable = std::move(expanded);
}

DecoderShape decoder_shape(const Dynamic<ModelConfig>& decoder) {
  const auto* lm = decoder.as<LanguageModelConfig>();
  if (!lm) return {};
  return {lm->hidden_size, lm->embeddings.vocab_size, lm->decoder ? lm->decoder->layer_count() : 0};
}

void check_fusion_decoder(const Dynamic<ModelConfig>& decoder, const config::Config& owner,
                          const ResolveContext& ctx) {
  if (decoder && !decoder.as<LanguageModelConfig>())
    ctx.error(owner, "decoder",
              "must be a language_model (found " + std::string(decoder.type_name()) + ")");
}

void EarlyFusionConfig::resolve_model(ResolveContext& ctx) {
  apply_lr_scale(ctx, lr_scale);
  for (const auto& [name, entry] : encoders) encoders_trainable.emplace(name, false);
  for (auto& [name, entry] : encoders) {
    const auto found = encoders_trainable.find(name);
    entry.encoder_frozen = !found->second;
    entry.connectors_frozen = !fusion_trainable;
    entry.decoder_width = decoder_width();
  }
  ctx.hidden_size = decoder_width();
  resolve_fusion_embedding(fusion_embedding, fusion_vocab_size, decoder_width(), *this, ctx);
}

void resolve_fusion_embedding(std::optional<WeightConfig>& embedding, int64_t rows, int64_t width,
                              const config::Config& owner, ResolveContext& ctx) {
  if (rows > 0)
    set_default(embedding, WeightConfig{});
  else if (embedding)
    ctx.error(owner, "fusion_embedding", "is set but fusion_vocab_size is 0");
  if (!embedding) return;
  embedding->shape = {rows, width};
  embedding->default_initialization = default_weight_init(ctx);
  embedding->multiplied = false;
}

void EarlyFusionConfig::enter(const config::Config& child, ResolveContext& child_ctx) const {
  if (&child == decoder.get()) {
    child_ctx.frozen = child_ctx.frozen || !decoder_trainable;
  } else if (fusion_embedding && &child == &*fusion_embedding) {
    child_ctx.frozen = child_ctx.frozen || !fusion_trainable;
  }
}

namespace {

// Reports the keys of `dict` (field `field`) that name no encoder, at each key's line, and the
// encoders `dict` lacks, at the encoder's line, when `required`.
template <class T>
void check_keys(const EarlyFusionConfig& c, const ResolveContext& ctx, const std::string& field,
                const std::map<std::string, T>& dict, bool required) {
  std::vector<std::string> names;
  for (const auto& [name, entry] : c.encoders) names.push_back(name);
  for (const auto& [key, value] : dict) {
    if (c.encoders.count(key)) continue;
    std::string message = "'" + key + "' is not an encoder";
    if (auto guess = config::did_you_mean(key, names)) message += "; did you mean '" + *guess + "'?";
    ctx.error(c, field + "." + key, message + " (encoders: " + config::join(names) + ")");
  }
  if (!required) return;
  for (const auto& name : names)
    if (!dict.count(name))
      ctx.error(c, "encoders." + name, "encoder '" + name + "' has no entry in " + field);
}

}  // namespace

void EarlyFusionConfig::validate(const ResolveContext& ctx) const {
  check_fusion_decoder(decoder, *this, ctx);
  if (encoders.empty()) ctx.error(*this, "encoders", "names no encoder; give at least one");
  for (const auto& [name, entry] : encoders)
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                            std::string::npos)
      ctx.error(*this, "encoders." + name,
                "encoder name '" + name + "' must be letters, digits and _ (it names parameters)");
  check_keys(*this, ctx, "encoder_tokens", encoder_tokens, true);
  check_keys(*this, ctx, "encoders_trainable", encoders_trainable, false);
  check_keys(*this, ctx, "begin_tokens", begin_tokens, false);
  check_keys(*this, ctx, "end_tokens", end_tokens, false);
  // Every special id must have an embedding row and mean one thing only.
  const int64_t vocab = decoder_vocab_size(), rows = vocab + fusion_vocab_size;
  std::map<int64_t, std::string> seen;
  const auto check_id = [&](const std::string& field, const std::string& name, int64_t id) {
    const std::string where = field + "." + name;
    if (vocab > 0 && (id < 0 || id >= rows)) {
      ctx.error(*this, where,
                "token id " + std::to_string(id) + " has no embedding row: the decoder's table "
                "holds ids 0.." + std::to_string(vocab - 1) +
                (fusion_vocab_size > 0
                     ? " and the fusion embedding " + std::to_string(vocab) + ".." +
                           std::to_string(rows - 1)
                     : std::string(" (fusion_vocab_size adds rows after it)")));
      return;
    }
    const auto [it, fresh] = seen.emplace(id, where);
    if (!fresh)
      ctx.error(*this, where,
                "token id " + std::to_string(id) + " is also " + it->second +
                    "; placeholders and markers need ids of their own");
  };
  for (const auto& [name, id] : encoder_tokens) check_id("encoder_tokens", name, id);
  for (const auto& [name, id] : begin_tokens) check_id("begin_tokens", name, id);
  for (const auto& [name, id] : end_tokens) check_id("end_tokens", name, id);
}

// The edge from each encoder into the decoder says where its features go.
std::vector<config::FlowStage> EarlyFusionConfig::flow() const {
  config::FlowStage decoder_stage{.fields = {"decoder"}};
  for (const auto& [name, entry] : encoders) {
    const auto token = encoder_tokens.find(name);
    if (token == encoder_tokens.end()) continue;
    std::string label = std::to_string(entry.tokens) + " features replace token " +
                        std::to_string(token->second);
    const auto begin = begin_tokens.find(name), end = end_tokens.find(name);
    if (begin != begin_tokens.end() && end != end_tokens.end())
      label += ", between " + std::to_string(begin->second) + " and " +
               std::to_string(end->second);
    decoder_stage.input_labels[name] = label;
  }
  if (fusion_vocab_size > 0)
    decoder_stage.input_labels["fusion_embedding"] =
        "token rows " + std::to_string(decoder_vocab_size()) + ".." +
        std::to_string(decoder_vocab_size() + fusion_vocab_size - 1);
  return {{.fields = {"encoders", "fusion_embedding"}, .parallel = true}, decoder_stage};
}

std::vector<const config::Config*> EarlyFusionConfig::per_token_parts() const {
  if (!decoder) return {this};
  return {decoder.get()};
}

std::vector<std::pair<std::string, double>> EarlyFusionConfig::media_flops() const {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [name, entry] : encoders)
    if (entry.encoder) out.emplace_back(name, entry.media_flops());
  return out;
}

double FusionEncoderConfig::media_flops() const {
  if (!encoder) return 0;
  const int64_t length = encoder->sequence_length();
  double flops = config::count_forward_flops(*encoder, {.context_length = length}) *
                 static_cast<double>(length);
  int64_t count = encoder->output_tokens();
  for (const auto& c : connectors) {
    if (!c) continue;
    flops += config::count_forward_flops(*c, {.context_length = count}) *
             static_cast<double>(count);
    count = c->output_tokens(count);
  }
  return flops;
}

void register_early_fusion(config::Registry& registry) {
  registry.add<EarlyFusionConfig>();
}

}  // namespace blocks
