// How each initialization type fills a tensor, matching torch.nn.init's formulas (gains,
// fans, trunc_normal_'s inverse-CDF sampling) and Mamba's reference for its state-space
// parameters. Kept in one file because they share the gain and fan helpers.
#include <cmath>

#include "blocks/init/constant.h"
#include "blocks/init/fan_scaled.h"
#include "blocks/init/magneto.h"
#include "blocks/init/normal.h"
#include "blocks/init/state_space.h"
#include "blocks/init/uniform.h"
#include "blocks/modules.h"

namespace blocks {

namespace {

using nn::InitTarget;

// torch.nn.init.trunc_normal_ with bounds mean -/+ truncation * std.
void normal(InitTarget& t, double mean, double std, std::optional<double> truncation) {
  if (!truncation) {
    t.values.normal_(mean, std, t.generator);
    return;
  }
  const double a = -*truncation, b = *truncation;  // in standard deviations
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  t.values.uniform_(2 * cdf(a) - 1, 2 * cdf(b) - 1, t.generator);
  t.values.erfinv_().mul_(std * std::sqrt(2.0)).add_(mean);
  t.values.clamp_(mean + a * std, mean + b * std);
}

// std for "normal", or the bound sqrt(3) * std for "uniform".
void scaled(InitTarget& t, double std, const std::string& distribution) {
  if (distribution == "uniform") {
    const double bound = std::sqrt(3.0) * std;
    t.values.uniform_(-bound, bound, t.generator);
  } else {
    t.values.normal_(0.0, std, t.generator);
  }
}

// torch.nn.init.calculate_gain.
double gain(const std::string& nonlinearity, double negative_slope) {
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1 + negative_slope * negative_slope));
  if (nonlinearity == "tanh") return 5.0 / 3;
  if (nonlinearity == "selu") return 3.0 / 4;
  return 1.0;  // linear, sigmoid, conv
}

void xavier(InitTarget& t, double g, const std::string& distribution) {
  scaled(t, g * std::sqrt(2.0 / static_cast<double>(t.fan_in + t.fan_out)), distribution);
}

}  // namespace

void register_modules_initializers(nn::ModuleRegistry& modules) {
  modules.add_initializer<FillInitConfig>(
      [](const FillInitConfig& c, InitTarget& t) { t.values.fill_(c.value); });
  modules.add_initializer<ZerosInitConfig>(
      [](const ZerosInitConfig&, InitTarget& t) { t.values.zero_(); });
  modules.add_initializer<OnesInitConfig>(
      [](const OnesInitConfig&, InitTarget& t) { t.values.fill_(1.0); });
  modules.add_initializer<NormalInitConfig>(
      [](const NormalInitConfig& c, InitTarget& t) { normal(t, c.mean, c.std, c.truncation); });
  modules.add_initializer<ScaledNormalInitConfig>([](const ScaledNormalInitConfig& c,
                                                     InitTarget& t) {
    normal(t, c.mean, c.scaled_std(), c.truncation);
  });
  modules.add_initializer<UniformInitConfig>([](const UniformInitConfig& c, InitTarget& t) {
    t.values.uniform_(c.low, c.high, t.generator);
  });
  modules.add_initializer<KaimingInitConfig>([](const KaimingInitConfig& c, InitTarget& t) {
    const double fan = static_cast<double>(c.mode == "fan_out" ? t.fan_out : t.fan_in);
    scaled(t, gain(c.nonlinearity, c.negative_slope) / std::sqrt(fan), c.distribution);
  });
  modules.add_initializer<XavierInitConfig>(
      [](const XavierInitConfig& c, InitTarget& t) { xavier(t, c.gain, c.distribution); });
  // linear_default: nn.Linear's kaiming_uniform_(a=sqrt(5)), bound 1/sqrt(fan_in), std that / sqrt 3.
  modules.add_initializer<MagnetoInitConfig>([](const MagnetoInitConfig& c, InitTarget& t) {
    if (c.base == "linear_default")
      scaled(t, c.gain / std::sqrt(3.0 * static_cast<double>(t.fan_in)), c.distribution);
    else
      xavier(t, c.gain, c.distribution);
  });
  // A_log[c, n] = log(n + 1).
  modules.add_initializer<S4dRealInitConfig>([](const S4dRealInitConfig&, InitTarget& t) {
    const int64_t n = t.values.size(-1);
    t.values.copy_(at::arange(1, n + 1, t.values.options()).log().expand_as(t.values));
  });
  // dt = exp(U(log dt_min, log dt_max)) floored, stored as softplus^-1(dt) = dt + log(-expm1(-dt)).
  modules.add_initializer<MambaDtInitConfig>([](const MambaDtInitConfig& c, InitTarget& t) {
    t.values.uniform_(0.0, 1.0, t.generator);
    const at::Tensor dt =
        at::exp(t.values * (std::log(c.dt_max) - std::log(c.dt_min)) + std::log(c.dt_min))
            .clamp_min(c.floor);
    t.values.copy_(dt + at::log(-at::expm1(-dt)));
  });
}

}  // namespace blocks
