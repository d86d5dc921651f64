// The encoder model's module: the encoder's input checked and encoded; the features returned
// as the hidden state `features` whether asked for or not, since a model without a head has
// nothing else to give.
#include "blocks/encoders/encoder_module.h"
#include "blocks/models/encoder_model.h"

namespace blocks {
namespace {

class EncoderModel : public ModelModule {
 public:
  EncoderModel(const EncoderModelConfig& c, Builder& b, const std::string& path) : path_(path) {
    encoder_ = register_module(
        "encoder", b.build_as<EncoderModule>(*c.encoder, child_path(c, path, *c.encoder)));
  }
  using ModelModule::forward;
  ModelOutput forward(const ModelInput& input) override {
    check_inputs(input, path_);
    ModelOutput out;
    out.hidden_states["features"] = encoder_->forward(input.named.at(encoder_->input().name));
    return out;
  }
  std::vector<InputSpec> inputs() const override {
    InputSpec spec = encoder_->input();
    spec.required = true;
    return {spec};
  }
  std::vector<std::string> hidden_state_names() const override { return {"features"}; }

 private:
  std::string path_;
  std::shared_ptr<EncoderModule> encoder_;
};

}  // namespace

void register_modules_encoder_model(nn::ModuleRegistry& modules) {
  modules.add<EncoderModelConfig>([](const EncoderModelConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<EncoderModel>(c, b, path);
  });
}

}  // namespace blocks
