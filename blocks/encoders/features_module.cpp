#include "blocks/encoders/encoder_module.h"
#include "blocks/encoders/features.h"

namespace blocks {

namespace {

class FeaturesEncoder : public EncoderModule {
 public:
  FeaturesEncoder(const FeaturesEncoderConfig& c, Builder& b, const std::string& path)
      : config_(c), dtype_(b.options().dtype().toScalarType()), path_(path) {}

  InputSpec input() const override {
    return {config_.input, InputSpec::Type::floating, 3, false, "",
            "features [items, " + std::to_string(config_.tokens) + ", " +
                std::to_string(config_.width) + "]"};
  }

  at::Tensor forward(const at::Tensor& features) override {
    if (features.dim() != 3 || features.size(1) != config_.tokens ||
        features.size(2) != config_.width)
      throw InputError(path_, "features must be [items, " + std::to_string(config_.tokens) +
                                  ", " + std::to_string(config_.width) + "], got " +
                                  c10::str(features.sizes()));
    return features.to(dtype_);
  }

 private:
  const FeaturesEncoderConfig config_;
  at::ScalarType dtype_;
  std::string path_;
};

}  // namespace

void register_modules_features_encoder(nn::ModuleRegistry& modules) {
  modules.add<FeaturesEncoderConfig>(
      [](const FeaturesEncoderConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<FeaturesEncoder>(c, b, path);
      });
}

}  // namespace blocks
