// Modules of layer_norm, rms_norm and none. A normalization applied at several places (qk_norm's
// queries and keys, Sub-LN's mixer and MLP) holds one weight set per place, named "0", "1", ...
// RMSNorm normalizes in float32 and casts back before the weight scales, as Llama's reference
// does; with a weight offset it also scales in float32 and casts once at the end, as
// transformers' GemmaRMSNorm computes `_norm(x.float()) * (1.0 + weight.float())`.
#include "blocks/modules.h"
#include "blocks/norms/normalization.h"

namespace blocks {

namespace {

// The weights of one place.
struct Place : torch::nn::Module {
  at::Tensor weight, bias;
  int64_t width = 0;
};

template <class C>
std::vector<std::shared_ptr<Place>> make_places(NormModule& self, const C& c, Builder& b,
                                                const std::string& path, bool with_bias) {
  std::vector<std::shared_ptr<Place>> places;
  const bool several = c.widths.size() > 1;
  for (size_t i = 0; i < c.widths.size(); ++i) {
    std::shared_ptr<Place> place;
    torch::nn::Module* owner = &self;
    const std::string prefix = several ? std::to_string(i) + "." : "";
    if (several) {
      place = self.register_module(std::to_string(i), std::make_shared<Place>());
      owner = place.get();
    } else {
      place = std::make_shared<Place>();
    }
    place->width = c.widths[i];
    place->weight = b.parameter(*owner, c, path, prefix + "weight", c.weight_initialization.get(),
                                "weight");
    if constexpr (std::is_same_v<C, LayerNormConfig>)
      if (with_bias)
        place->bias = b.parameter(*owner, c, path, prefix + "bias", c.bias_initialization.get(),
                                "bias");
    places.push_back(place);
  }
  return places;
}

class NormBase : public NormModule {
 protected:
  const Place& place(const at::Tensor& x, int64_t index) const {
    if (index < 0 || index >= static_cast<int64_t>(places_.size()))
      throw InputError(path_, "no normalization place " + std::to_string(index));
    const Place& p = *places_[index];
    if (x.size(-1) != p.width)
      throw InputError(path_, "expected " + std::to_string(p.width) +
                                  " features in the last dimension, got shape " +
                                  c10::str(x.sizes()));
    return p;
  }
  std::vector<std::shared_ptr<Place>> places_;
  std::string path_;
};

class LayerNorm : public NormBase {
 public:
  LayerNorm(const LayerNormConfig& c, Builder& b, const std::string& path) : epsilon_(c.epsilon) {
    path_ = path;
    places_ = make_places(*this, c, b, path, c.bias);
  }
  at::Tensor forward(const at::Tensor& x, int64_t index) override {
    const Place& p = place(x, index);
    return at::layer_norm(x, {p.width}, p.weight, p.bias, epsilon_);
  }
  void pretty_print(std::ostream& s) const override { s << "LayerNorm(eps=" << epsilon_ << ")"; }

 private:
  double epsilon_;
};

class RmsNorm : public NormBase {
 public:
  RmsNorm(const RmsNormConfig& c, Builder& b, const std::string& path)
      : epsilon_(c.epsilon), weight_offset_(c.weight_offset) {
    path_ = path;
    places_ = make_places(*this, c, b, path, false);
  }
  at::Tensor forward(const at::Tensor& x, int64_t index) override {
    const Place& p = place(x, index);
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, true) + epsilon_);
    if (weight_offset_ == 0) return p.weight * normed.to(x.scalar_type());
    return (normed * (p.weight.to(at::kFloat) + weight_offset_)).to(x.scalar_type());
  }
  void pretty_print(std::ostream& s) const override {
    s << "RmsNorm(eps=" << epsilon_;
    if (weight_offset_ != 0) s << ", weight_offset=" << weight_offset_;
    s << ")";
  }

 private:
  double epsilon_, weight_offset_;
};

class NoNorm : public NormModule {
 public:
  at::Tensor forward(const at::Tensor& x, int64_t) override { return x; }
  void pretty_print(std::ostream& s) const override { s << "Identity()"; }
};

}  // namespace

void register_modules_normalization(nn::ModuleRegistry& modules) {
  modules.add<LayerNormConfig>([](const LayerNormConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<LayerNorm>(c, b, path);
  });
  modules.add<RmsNormConfig>([](const RmsNormConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<RmsNorm>(c, b, path);
  });
  modules.add<NoNormConfig>([](const NoNormConfig&, Builder&, const std::string&) {
    return std::make_shared<NoNorm>();
  });
}

}  // namespace blocks
