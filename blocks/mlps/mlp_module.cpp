// Modules of `mlp` (down(act(up(x)))) and `gated` (down(act(gate(x)) * up(x))).
#include <stdexcept>

#include "blocks/linear/linear_module.h"
#include "blocks/mlps/activation_module.h"
#include "blocks/mlps/gated.h"
#include "blocks/mlps/mlp.h"
#include "blocks/modules.h"

namespace blocks {

Activation activation_from_name(const std::string& name) {
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_tanh") return Activation::gelu_tanh;
  if (name == "quick_gelu") return Activation::quick_gelu;
  if (name == "relu") return Activation::relu;
  if (name == "squared_relu") return Activation::squared_relu;
  if (name == "silu") return Activation::silu;
  if (name == "identity") return Activation::identity;
  throw nn::BuildError("unknown activation `" + name + "`");
}

const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu_tanh";
    case Activation::quick_gelu: return "quick_gelu";
    case Activation::relu: return "relu";
    case Activation::squared_relu: return "squared_relu";
    case Activation::silu: return "silu";
    case Activation::identity: return "identity";
  }
  return "?";
}

namespace {

class Mlp : public MlpModule {
 public:
  Mlp(const MlpLayerConfig& c, Builder& b, const std::string& path)
      : activation_(activation_from_name(c.activation)), dropout_(c.dropout) {
    up_ = register_module("up", b.build_as<Linear>(c.up, child_path(c, path, c.up)));
    down_ = register_module("down", b.build_as<Linear>(c.down, child_path(c, path, c.down)));
  }
  at::Tensor forward(const at::Tensor& x, Step&) override {
    const at::Tensor h = blocks::dropout(activate(activation_, up_->forward(x)), dropout_, is_training());
    return down_->forward(inner(h));
  }
  void pretty_print(std::ostream& s) const override {
    s << "Mlp(activation=" << activation_name(activation_) << ", dropout=" << dropout_ << ")";
  }

 private:
  Activation activation_;
  double dropout_;
  std::shared_ptr<Linear> up_, down_;
};

class GatedMlp : public MlpModule {
 public:
  GatedMlp(const GatedMlpConfig& c, Builder& b, const std::string& path)
      : activation_(activation_from_name(c.activation)), dropout_(c.dropout) {
    gate_ = register_module("gate", b.build_as<Linear>(c.gate, child_path(c, path, c.gate)));
    up_ = register_module("up", b.build_as<Linear>(c.up, child_path(c, path, c.up)));
    down_ = register_module("down", b.build_as<Linear>(c.down, child_path(c, path, c.down)));
  }
  at::Tensor forward(const at::Tensor& x, Step&) override {
    const at::Tensor h = activate(activation_, gate_->forward(x)) * up_->forward(x);
    return down_->forward(inner(blocks::dropout(h, dropout_, is_training())));
  }
  void pretty_print(std::ostream& s) const override {
    s << "GatedMlp(activation=" << activation_name(activation_) << ", dropout=" << dropout_
      << ")";
  }

 private:
  Activation activation_;
  double dropout_;
  std::shared_ptr<Linear> gate_, up_, down_;
};

}  // namespace

void register_modules_mlp(nn::ModuleRegistry& modules) {
  modules.add<MlpLayerConfig>([](const MlpLayerConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<Mlp>(c, b, path);
  });
  modules.add<GatedMlpConfig>([](const GatedMlpConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<GatedMlp>(c, b, path);
  });
}

}  // namespace blocks
