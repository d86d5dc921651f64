// The gated cross-attention block module (see gated_cross_attention.h).
#include "blocks/linear/linear_module.h"
#include "blocks/mixers/cross_attention_module.h"
#include "blocks/sequences/gated_cross_attention.h"

namespace blocks {

namespace {

class GatedCrossAttention : public BlockModule {
 public:
  GatedCrossAttention(const GatedCrossAttentionConfig& c, Builder& b, const std::string& path)
      : mode_(c.unattended_rows),
        zero_attention_(mode_ != "skip_mlp"),
        zero_mlp_(mode_ != "skip_attention") {
    normalization_ = register_module(
        "normalization",
        b.build_as<NormModule>(*c.normalization, child_path(c, path, *c.normalization)));
    attention_ = register_module(
        "attention", std::make_shared<CrossAttention>(c.attention, b,
                                                      child_path(c, path, c.attention)));
    attention_gate_ = register_module(
        "attention_gate",
        b.build_as<Weight>(c.attention_gate, child_path(c, path, c.attention_gate)));
    mlp_normalization_ = register_module(
        "mlp_normalization",
        b.build_as<NormModule>(*c.mlp_normalization, child_path(c, path, *c.mlp_normalization)));
    mlp_ = register_module("mlp", b.build_as<MlpModule>(*c.mlp, child_path(c, path, *c.mlp)));
    mlp_gate_ =
        register_module("mlp_gate", b.build_as<Weight>(c.mlp_gate, child_path(c, path, c.mlp_gate)));
  }

  at::Tensor forward(const at::Tensor& x, Step& step) override {
    auto [a, attended] = attention_->attend(normalization_->forward(x), step);
    if (attended.defined() && zero_attention_) a = a * attended.to(a.scalar_type());
    const at::Tensor h = x + attention_gate_->weight.tanh() * a;
    at::Tensor m = mlp_->forward(mlp_normalization_->forward(h), step);
    if (attended.defined() && zero_mlp_) m = m * attended.to(m.scalar_type());
    return h + mlp_gate_->weight.tanh() * m;
  }

  void pretty_print(std::ostream& s) const override {
    s << "GatedCrossAttention(unattended_rows=" << mode_ << ")";
  }

 private:
  std::string mode_;
  bool zero_attention_, zero_mlp_;
  std::shared_ptr<NormModule> normalization_, mlp_normalization_;
  std::shared_ptr<CrossAttention> attention_;
  std::shared_ptr<MlpModule> mlp_;
  std::shared_ptr<Weight> attention_gate_, mlp_gate_;
};

}  // namespace

void register_modules_gated_cross_attention(nn::ModuleRegistry& modules) {
  modules.add<GatedCrossAttentionConfig>(
      [](const GatedCrossAttentionConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<GatedCrossAttention>(c, b, path);
      });
}

}  // namespace blocks
