// An encoder alone as a model (transformers' CLIPVisionModel, torchtune's clip_vision_encoder):
// media in, the encoder's selected features out as the hidden state `features`; no head, so no
// logits. What `blockc import hf` makes of a clip_vision_model or clip folder, and a file a
// fusion model's encoder slot can mount (`encoder: {extends: "clip.yaml#model.encoder"}`). Its
// parameters are named `encoder.*`, as an early-fusion slot's are below `encoders.NAME.`.
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct EncoderModelConfig : Declared<EncoderModelConfig, ModelConfig> {
  static constexpr std::string_view type_name = "encoder_model";
  static constexpr std::string_view type_doc =
      "An encoder alone (a vision tower, CLIPVisionModel): media in, its selected features out "
      "(hidden state `features`).";
  Dynamic<EncoderConfig> encoder;
  double lr_scale = 1.0;

  static void declare(Fields<EncoderModelConfig>& f);
  void resolve_model(ResolveContext& ctx) override;
  std::vector<config::FlowStage> flow() const override { return {{.fields = {"encoder"}}}; }
  // Nothing runs per token: the encoder counts per media item.
  std::vector<std::pair<std::string, double>> media_flops() const override;
};

}  // namespace blocks
