// The transformer block module: two residual branches (or one, when the config leaves the mixer
// or the MLP out) with pre-, post- or sub-LN placement.
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
    auto norm = [&](const char* name, const Dynamic<NormalizationConfig>& n) {
      return register_module(name, b.build_as<NormModule>(*n, child_path(c, path, *n)));
    };
    // Registered in this order (normalization, mixer, mlp_normalization, mlp) for stable
    // parameter order; a block of one branch normalizes it with `normalization`.
    std::shared_ptr<NormModule> first = norm("normalization", c.normalization);
    if (c.mixer) {
      mixer_ = register_module("mixer",
                               b.build_as<MixerModule>(*c.mixer, child_path(c, path, *c.mixer)));
      branches_.push_back({first, mixer_});
    }
    if (c.mlp) {
      std::shared_ptr<NormModule> mlp_norm =
          c.mixer ? norm("mlp_normalization", c.mlp_normalization) : first;
      mlp_ = register_module("mlp", b.build_as<MlpModule>(*c.mlp, child_path(c, path, *c.mlp)));
      branches_.push_back({mlp_norm, mlp_});
    }
    if (c.normalization_placement == "sub") {  // validation makes sure both branches exist
      auto sub = norm("sub_normalization", c.sub_normalization);
      mixer_->set_inner_normalization(sub, 0);
      mlp_->set_inner_normalization(sub, 1);
    }
  }

  at::Tensor forward(const at::Tensor& x, Step& step) override {
    const bool training = is_training();
    at::Tensor h = x;
    for (const Branch& branch : branches_) {
      if (post_)
        h = branch.norm->forward(residual(h) +
                                 blocks::dropout(branch.f->forward(h, step), dropout_, training));
      else
        h = residual(h) +
            blocks::dropout(branch.f->forward(branch.norm->forward(h), step), dropout_, training);
    }
    return h;
  }

  void pretty_print(std::ostream& s) const override {
    s << "Transformer(normalization_placement=" << placement_
      << ", residual_scale=" << residual_scale_ << ", dropout=" << dropout_ << ")";
  }

 private:
  struct Branch {
    std::shared_ptr<NormModule> norm;
    std::shared_ptr<BranchModule> f;
  };

  at::Tensor residual(const at::Tensor& x) const {
    return residual_scale_ == 1.0 ? x : x * residual_scale_;
  }

  bool post_;
  std::string placement_;
  double residual_scale_, dropout_;
  std::shared_ptr<MixerModule> mixer_;
  std::shared_ptr<MlpModule> mlp_;
  std::vector<Branch> branches_;  // mixer then MLP, those present
};

}  // namespace

void register_modules_transformer(nn::ModuleRegistry& modules) {
  modules.add<TransformerConfig>(
      [](const TransformerConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<Transformer>(c, b, path);
      });
}

}  // namespace blocks
