// The transformer block module: two residual branches with pre-, post- or sub-LN placement.
//   pre, sub: h = a x + f(norm(x));        post: h = norm(a x + f(x))
// where a is residual_scale (DeepNet's alpha); Sub-LN hands the branches their extra norm.
#include "blocks/modules.h"
#include "blocks/sequences/transformer.h"

namespace blocks {

namespace {

class Transformer : public BlockModule {
 public:
  Transformer(const TransformerConfig& c, Builder& b, const std::string& path)
      : post_(c.normalization_placement == "post"),
        placement_(c.normalization_placement),
        residual_scale_(c.residual_scale),
        dropout_(c.dropout) {
    normalization_ = register_module(
        "normalization",
        b.build_as<NormModule>(*c.normalization, child_path(c, path, *c.normalization)));
    mixer_ = register_module("mixer",
                             b.build_as<MixerModule>(*c.mixer, child_path(c, path, *c.mixer)));
    mlp_normalization_ = register_module(
        "mlp_normalization",
        b.build_as<NormModule>(*c.mlp_normalization, child_path(c, path, *c.mlp_normalization)));
    mlp_ = register_module("mlp", b.build_as<MlpModule>(*c.mlp, child_path(c, path, *c.mlp)));
    if (c.normalization_placement == "sub") {
      auto sub = register_module("sub_normalization",
                                 b.build_as<NormModule>(*c.sub_normalization,
                                                        child_path(c, path, *c.sub_normalization)));
      mixer_->set_inner_normalization(sub, 0);
      mlp_->set_inner_normalization(sub, 1);
    }
  }

  at::Tensor forward(const at::Tensor& x, Step& step) override {
    const bool training = is_training();
    if (post_) {
      const at::Tensor h = normalization_->forward(
          residual(x) + blocks::dropout(mixer_->forward(x, step), dropout_, training));
      return mlp_normalization_->forward(residual(h) +
                                         blocks::dropout(mlp_->forward(h, step), dropout_, training));
    }
    const at::Tensor h =
        residual(x) + blocks::dropout(mixer_->forward(normalization_->forward(x), step), dropout_, training);
    return residual(h) +
           blocks::dropout(mlp_->forward(mlp_normalization_->forward(h), step), dropout_, training);
  }

  void pretty_print(std::ostream& s) const override {
    s << "Transformer(normalization_placement=" << placement_
      << ", residual_scale=" << residual_scale_ << ", dropout=" << dropout_ << ")";
  }

 private:
  at::Tensor residual(const at::Tensor& x) const {
    return residual_scale_ == 1.0 ? x : x * residual_scale_;
  }

  bool post_;
  std::string placement_;
  double residual_scale_, dropout_;
  std::shared_ptr<NormModule> normalization_, mlp_normalization_;
  std::shared_ptr<MixerModule> mixer_;
  std::shared_ptr<MlpModule> mlp_;
};

}  // namespace

void register_modules_transformer(nn::ModuleRegistry& modules) {
  modules.add<TransformerConfig>([](const TransformerConfig& c, Builder& b,
                                    const std::string& path) {
    return std::make_shared<Transformer>(c, b, path);
  });
}

}  // namespace blocks
