#include "blocks/encoders/features.h"

namespace blocks {

void FeaturesEncoderConfig::declare(Fields<FeaturesEncoderConfig>& f) {
  using C = FeaturesEncoderConfig;
  f.add("width", &C::width, "Width of each feature vector.").required().min(1);
  f.add("tokens", &C::tokens, "Feature vectors per media item.").required().min(1);
  f.add("input", &C::input, "Name of the model input that carries the features.");
}

void FeaturesEncoderConfig::validate(const ResolveContext& ctx) const {
  if (input.empty() || input.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                           std::string::npos)
    ctx.error(*this, "input", "input name '" + input + "' must be letters, digits and _");
}

void register_features_encoder(config::Registry& registry) {
  registry.add<FeaturesEncoderConfig>();
}

}  // namespace blocks
