#include "blocks/models/encoder_model.h"

#include "blocks/linear/linear.h"
#include "framework/config/parameters.h"

namespace blocks {

void EncoderModelConfig::declare(Fields<EncoderModelConfig>& f) {
  f.add("encoder", &EncoderModelConfig::encoder, "The encoder (a vision tower).").required();
  declare_lr_scale(f);
}

void EncoderModelConfig::resolve_model(ResolveContext& ctx) { apply_lr_scale(ctx, lr_scale); }

std::vector<std::pair<std::string, double>> EncoderModelConfig::media_flops() const {
  if (!encoder) return {};
  const int64_t length = encoder->sequence_length();
  return {{"encoder", config::count_forward_flops(*encoder, {.context_length = length}) *
                          static_cast<double>(length)}};
}

void register_encoder_model(config::Registry& registry) { registry.add<EncoderModelConfig>(); }

}  // namespace blocks
