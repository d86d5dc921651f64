// An encoder whose output is given: features computed elsewhere (a vision tower blocks does not
// model, such as Llama 3.2 Vision's tiled encoder, or features cached once for many runs) enter
// the model as an input and go on to the connectors as they are.
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct FeaturesEncoderConfig : Declared<FeaturesEncoderConfig, EncoderConfig> {
  static constexpr std::string_view type_name = "features";
  static constexpr std::string_view type_doc =
      "Precomputed features given as an input: each media item is `tokens` vectors of `width`.";
  int64_t width = 0;
  int64_t tokens = 0;
  std::string input = "features";

  static void declare(Fields<FeaturesEncoderConfig>& f);
  void validate(const ResolveContext& ctx) const override;
  int64_t output_width() const override { return width; }
  int64_t output_tokens() const override { return tokens; }
  int64_t sequence_length() const override { return tokens; }
};

}  // namespace blocks
