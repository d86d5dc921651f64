#include "blocks/models/deep_fusion.h"

#include <algorithm>
#include <functional>
#include <set>

#include "blocks/mixers/cross_attention.h"

namespace blocks {

namespace {

// Visits each cross-attention at or below `root` (the fusion layers' block) with its path.
void for_each_cross_attention(
    const config::Config& root, const std::string& path,
    const std::function<void(CrossAttentionConfig&, const std::string&)>& visit) {
  // for_each_config visits mutable configs; resolution sets fields through it, readers do not.
  config::for_each_config(const_cast<config::Config&>(root), path,
                          [&](config::Config& c, const std::string& at) {
                            if (auto* cross = dynamic_cast<CrossAttentionConfig*>(&c))
                              visit(*cross, at);
                          });
}

}  // namespace

void FusionLayersConfig::declare(Fields<FusionLayersConfig>& f) {
  using C = FusionLayersConfig;
  f.add("every", &C::every,
        "A fusion layer at every N-th decoder layer: layers N-1, 2N-1, ... (N must divide the "
        "decoder's layers); or give `layers`.")
      .min(1);
  f.add("layers", &C::layers, "The decoder layers (0-based) that get a fusion layer; or `every`.");
  f.add("placement", &C::placement,
        "Whether a fusion layer runs before its decoder layer (torchtune's fusion_first, Llama "
        "3.2 Vision) or after it.")
      .choices({"before", "after"});
  f.add("block", &C::block,
        "The block of each fusion layer (gated_cross_attention); each place has its own weights.")
      .required();
  f.add("at", &C::at, "The decoder layers that have a fusion layer, ascending.", Hint::derived);
}

void FusionLayersConfig::resolve(ResolveContext&) {
  at.clear();
  if (every && *every > 0 && !layers)
    for (int64_t layer = *every - 1; layer < decoder_layers; layer += *every) at.push_back(layer);
  if (layers && !every) {
    std::set<int64_t> unique;
    for (int64_t layer : *layers)
      if (layer >= 0 && layer < decoder_layers) unique.insert(layer);
    at.assign(unique.begin(), unique.end());
  }
}

void FusionLayersConfig::validate(const ResolveContext& ctx) const {
  if (every && layers) {
    ctx.error(*this, "layers", "give `every` or `layers`, not both");
    return;
  }
  if (!every && !layers) {
    ctx.error(*this, "", "give `every` (a fusion layer every N decoder layers) or `layers`");
    return;
  }
  const std::string length = std::to_string(decoder_layers);
  if (every && decoder_layers > 0 && decoder_layers % *every != 0)
    ctx.error(*this, "every",
              "every " + std::to_string(*every) + " does not divide the decoder's " + length +
                  " layers");
  if (!layers) return;
  if (layers->empty()) ctx.error(*this, "layers", "lists no decoder layer");
  std::map<int64_t, size_t> seen;
  for (size_t i = 0; i < layers->size(); ++i) {
    const int64_t layer = (*layers)[i];
    const std::string field = "layers[" + std::to_string(i) + "]";
    if (layer < 0 || layer >= decoder_layers) {
      ctx.error(*this, field,
                "decoder layer " + std::to_string(layer) + " does not exist: the decoder has " +
                    length + " layers (0-" + std::to_string(decoder_layers - 1) + ")");
      continue;
    }
    const auto [it, fresh] = seen.emplace(layer, i);
    if (!fresh)
      ctx.error(*this, field,
                "decoder layer " + std::to_string(layer) + " is listed twice (also at layers[" +
                    std::to_string(it->second) + "])");
  }
}

config::Positions FusionLayersConfig::positions_of(const config::Config& child) const {
  if (&child != block.get() || at.empty()) return config::Positions::one(0);
  // Runs of equal spacing, so that `every` is one run.
  config::Positions positions;
  for (size_t i = 0; i < at.size();) {
    config::Positions::Run run{at[i], 1, 1};
    if (i + 1 < at.size()) run.step = at[i + 1] - at[i];
    size_t j = i + 1;
    while (j < at.size() && at[j] - at[j - 1] == run.step) ++j;
    run.count = static_cast<int64_t>(j - i);
    positions.runs.push_back(run);
    i = j;
  }
  return positions;
}

void DeepFusionConfig::declare(Fields<DeepFusionConfig>& f) {
  using C = DeepFusionConfig;
  f.add("decoder", &C::decoder,
        "The language model the fusion layers join; it keeps its own parameter names and layer "
        "numbers.")
      .required();
  f.add("encoder", &C::encoder,
        "The encoder and its connectors; their output is the memory 'encoder' of every fusion "
        "layer.")
      .required();
  f.add("fusion_layers", &C::fusion_layers,
        "The fusion layers (gated cross-attention) and where they stand in the decoder.")
      .required();
  f.add("fusion_vocab_size", &C::fusion_vocab_size,
        "Extra token rows after the decoder's vocabulary, in the fusion embedding (Llama 3.2 "
        "Vision's 8: <|image|> and reserved ids); ids vocab_size.. vocab_size + this - 1.")
      .min(0);
  f.add("fusion_embedding", &C::fusion_embedding,
        "The extra rows [fusion_vocab_size, hidden_size]; only with fusion_vocab_size > 0.",
        Hint::optional);
  f.add("decoder_trainable", &C::decoder_trainable,
        "Whether the decoder's parameters train (torchtune's default: false).", Hint::optional);
  f.add("encoder_trainable", &C::encoder_trainable,
        "Whether the encoder's parameters train, connectors excluded (default: false).",
        Hint::optional);
  f.add("fusion_trainable", &C::fusion_trainable,
        "Whether the fusion parameters train: fusion layers, connectors, fusion embedding.",
        Hint::optional);
  declare_lr_scale(f);
}

void DeepFusionConfig::resolve_model(ResolveContext& ctx) {
  apply_lr_scale(ctx, lr_scale);
  encoder.encoder_frozen = !encoder_trainable;
  encoder.connectors_frozen = !fusion_trainable;
  const DecoderShape shape = decoder_shape(decoder);
  encoder.decoder_width = shape.width;
  encoder.any_width = true;
  fusion_layers.decoder_layers = shape.layers;
  ctx.hidden_size = shape.width;
  // Every cross-attention of the fusion layers reads the memory this model gives.
  const int64_t width = encoder.output_width();
  const int64_t tokens = encoder.output_tokens();
  if (fusion_layers.block)
    for_each_cross_attention(*fusion_layers.block, "",
                             [&](CrossAttentionConfig& cross, const std::string&) {
                               cross.given_memory_width = width;
                               cross.memory_tokens = tokens;
                             });
  resolve_fusion_embedding(fusion_embedding, fusion_vocab_size, shape.width, *this, ctx);
}

void DeepFusionConfig::enter(const config::Config& child, ResolveContext& child_ctx) const {
  if (&child == decoder.get())
    child_ctx.frozen = child_ctx.frozen || !decoder_trainable;
  else if (&child == &fusion_layers || (fusion_embedding && &child == &*fusion_embedding))
    child_ctx.frozen = child_ctx.frozen || !fusion_trainable;
}

void DeepFusionConfig::validate(const ResolveContext& ctx) const {
  check_fusion_decoder(decoder, *this, ctx);
  if (!fusion_layers.block) return;
  bool reads_memory = false;
  for_each_cross_attention(
      *fusion_layers.block, ctx.path_of("fusion_layers.block"),
      [&](const CrossAttentionConfig& cross, const std::string& path) {
        reads_memory = true;
        if (!cross.memory.empty() && cross.memory != memory_name)  // empty: its own error
          ctx.state->diagnostics->error(
              cross.mark_of("memory"), path + ".memory",
              "memory '" + cross.memory + "' is not one this model gives: a deep_fusion model "
              "gives its encoder's features as memory '" + std::string(memory_name) + "'");
      });
  if (!reads_memory)
    ctx.error(*this, "fusion_layers.block",
              "has no cross_attention: fusion layers that never read the encoder's features "
              "leave the encoder unused");
}

// The memory edge goes from the encoder into the fusion layers, and the fusion layers' into the
// decoder says where they stand; the fusion embedding is drawn beside (its rows join the
// decoder's token table).
std::vector<config::FlowStage> DeepFusionConfig::flow() const {
  config::FlowStage fusion{.fields = {"fusion_layers"}};
  fusion.input_labels["encoder"] = "memory '" + std::string(memory_name) + "': " +
                                   std::to_string(encoder.tokens) + " x " +
                                   std::to_string(encoder.output_width()) + " per item";
  config::FlowStage text{.fields = {"decoder"}};
  std::string places;
  for (size_t i = 0; i < fusion_layers.at.size(); ++i)
    places += (i ? ", " : "") + std::to_string(fusion_layers.at[i]);
  text.input_labels["fusion_layers"] = fusion_layers.placement + " decoder layers " + places;
  return {{.fields = {"encoder"}}, fusion, text};
}

std::vector<const config::Config*> DeepFusionConfig::per_token_parts() const {
  if (!decoder) return {this};
  return {decoder.get(), &fusion_layers};
}

std::vector<std::pair<std::string, double>> DeepFusionConfig::media_flops() const {
  if (!encoder.encoder) return {};
  double flops = encoder.media_flops();
  // Each fusion layer projects every memory vector to keys and values once.
  if (fusion_layers.block) {
    double projections = 0;
    for_each_cross_attention(*fusion_layers.block, "",
                             [&](const CrossAttentionConfig& cross, const std::string&) {
                               for (const LinearConfig* l : {&cross.key, &cross.value})
                                 projections += 2.0 * static_cast<double>(l->in_features) *
                                                static_cast<double>(l->out_features);
                             });
    flops += projections * static_cast<double>(encoder.tokens) *
             static_cast<double>(std::max<size_t>(fusion_layers.at.size(), 1));
  }
  return {{"encoder", flops}};
}

void register_deep_fusion(config::Registry& registry) { registry.add<DeepFusionConfig>(); }

}  // namespace blocks
