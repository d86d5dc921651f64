// Deep fusion (torchtune's DeepFusionModel; Flamingo, Llama 3.2 Vision): a decoder language
// model, an encoder with its connectors whose features become the memory `encoder`, and fusion
// layers (gated cross-attention blocks) that run before or after listed decoder layers. The
// decoder keeps its own parameter names and numbering (decoder.decoder.N...); fusion layers are
// named by the decoder layer they stand at (fusion_layers.N...). A fusion embedding holds token
// rows the decoder's table lacks. decoder_trainable, encoder_trainable and fusion_trainable
// resolve into every parameter's `trainable` (fusion: the layers, the connectors and the fusion
// embedding), with torchtune's defaults: only fusion trains.
#pragma once

#include "blocks/kinds.h"
#include "blocks/linear/linear.h"
#include "blocks/mixers/cross_attention.h"
#include "blocks/models/early_fusion.h"

namespace blocks {

// Where fusion layers stand in the decoder and the block each of them is (its own weights at
// each place).
struct FusionLayersConfig : Declared<FusionLayersConfig, config::Config>, config::Layout {
  static constexpr std::string_view type_name = "fusion_layers";
  static constexpr std::string_view type_doc =
      "Fusion layers at listed decoder layers (or every N), before or after each.";
  std::optional<int64_t> every;
  std::optional<std::vector<int64_t>> layers;
  std::string placement = "before";
  Dynamic<BlockConfig> block;
  std::vector<int64_t> at;  // derived: the decoder layers, ascending

  int64_t decoder_layers = 0;  // set by the model; not a field

  static void declare(Fields<FusionLayersConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  config::Positions positions_of(const config::Config& child) const override;
  bool shares_weights(const config::Config&) const override { return false; }
};

struct DeepFusionConfig : Declared<DeepFusionConfig, ModelConfig>, config::ChildContexts {
  static constexpr std::string_view type_name = "deep_fusion";
  static constexpr std::string_view type_doc =
      "A decoder language model with gated cross-attention layers into an encoder's features "
      "(Flamingo, Llama 3.2 Vision).";
  static constexpr std::string_view memory_name = kEncoderMemory;
  Dynamic<ModelConfig> decoder;
  FusionEncoderConfig encoder;
  FusionLayersConfig fusion_layers;
  int64_t fusion_vocab_size = 0;
  std::optional<WeightConfig> fusion_embedding;  // present iff fusion_vocab_size > 0
  bool decoder_trainable = false;
  bool encoder_trainable = false;
  bool fusion_trainable = true;
  double lr_scale = 1.0;

  static void declare(Fields<DeepFusionConfig>& f);
  void resolve_model(ResolveContext& ctx) override;
  void enter(const config::Config& child, ResolveContext& child_ctx) const override;
  void validate(const ResolveContext& ctx) const override;
  // The encoder, then the decoder with the fusion layers beside it, reading the memory.
  std::vector<config::FlowStage> flow() const override;
  std::vector<const config::Config*> per_token_parts() const override;
  // The encoder at its sequence length with its connectors, and every fusion layer's key and
  // value projections over the memory, per media item.
  std::vector<std::pair<std::string, double>> media_flops() const override;

};

}  // namespace blocks
