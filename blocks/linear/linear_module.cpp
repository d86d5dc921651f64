#include "blocks/linear/linear_module.h"

#include <c10/core/GradMode.h>

#include <cmath>

#include "blocks/init/fan_scaled.h"
#include "blocks/init/constant.h"
#include "blocks/linear/affine.h"

namespace blocks {

namespace {

// PEFT's LoRA A: kaiming_uniform_(a=sqrt(5)), torch.nn.Linear's default; B starts at zero.
const KaimingInitConfig& lora_a_init() {
  static const KaimingInitConfig init = [] {
    KaimingInitConfig c;
    c.negative_slope = std::sqrt(5.0);
    c.distribution = "uniform";
    return c;
  }();
  return init;
}

}  // namespace

Linear::Linear(const LinearConfig& config, Builder& builder, const std::string& p)
    : in_features(config.in_features),
      out_features(config.out_features),
      copies(config.copies),
      path(p) {
  const std::vector<int64_t> fans = {in_features, out_features};
  weight = builder.parameter(*this, config, path, "weight", config.weight_initialization.get(), {},
                             fans);
  if (nn::resolved(config.bias, path, "bias"))
    bias = builder.parameter(*this, config, path, "bias", config.bias_initialization.get(), {},
                             fans);
  if (nn::resolved(config.apply_peft, path, "apply_peft") && config.lora_rank > 0) {
    static const ZerosInitConfig zeros;
    lora_a = builder.parameter(*this, config, path, "lora_a", &lora_a_init(), {},
                               {in_features, config.lora_rank});
    lora_b = builder.parameter(*this, config, path, "lora_b", &zeros, {},
                               {config.lora_rank, out_features});
    lora_scale = config.lora_alpha / static_cast<double>(config.lora_rank);
    lora_dropout = config.lora_dropout;
  }
}

at::Tensor Linear::forward(const at::Tensor& x) {
  if (x.size(-1) != in_features)
    throw InputError(path, "expected inputs with " + std::to_string(in_features) +
                               " features in the last dimension, got shape " +
                               c10::str(x.sizes()));
  at::Tensor y = affine(x, weight, bias);
  if (lora_a.defined()) {
    const at::Tensor h = affine(blocks::dropout(x, lora_dropout, is_training()), lora_a);
    y = y + affine(h, lora_b) * lora_scale;
  }
  return y;
}

bool Linear::merge_adapters() {
  if (!lora_a.defined()) return false;
  c10::NoGradGuard no_grad;
  weight.add_(at::matmul(lora_b, lora_a) * lora_scale);
  lora_b.zero_();
  return true;
}

void Linear::pretty_print(std::ostream& stream) const {
  stream << "Linear(in=" << in_features << ", out=" << out_features;
  if (copies > 1) stream << ", copies=" << copies;
  stream << ", bias=" << (bias.defined() ? "true" : "false");
  if (lora_a.defined()) stream << ", lora_rank=" << lora_a.size(-2) << ", lora_scale=" << lora_scale;
  stream << ")";
}

Weight::Weight(const WeightConfig& config, Builder& builder, const std::string& path) {
  weight = builder.parameter(*this, config, path, "weight", config.initialization.get());
}

void Weight::pretty_print(std::ostream& stream) const {
  stream << "Weight(shape=" << weight.sizes() << ")";
}

int64_t merge_adapters(torch::nn::Module& root) {
  int64_t merged = 0;
  for (const auto& module : root.modules(/*include_self=*/true))
    if (auto* linear = dynamic_cast<Linear*>(module.get())) merged += linear->merge_adapters();
  return merged;
}

void register_modules_linear(nn::ModuleRegistry& modules) {
  modules.add<LinearConfig>([](const LinearConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<Linear>(c, b, path);
  });
  modules.add<WeightConfig>([](const WeightConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<Weight>(c, b, path);
  });
}

}  // namespace blocks
