#include "blocks/norms/normalization.h"

#include "blocks/init/constant.h"
#include "blocks/linear/linear.h"

namespace blocks {

namespace {
// The fields every normalization with a learned scale shares, declared once.
template <class C>
void declare_epsilon(Fields<C>& f) {
  f.add("epsilon", &C::epsilon, "Added to the variance for numerical stability.").above(0);
}
template <class C>
void declare_weight_initialization(Fields<C>& f, const char* doc) {
  f.add("weight_initialization", &C::weight_initialization, doc, Hint::optional);
}
template <class C>
void declare_training(Fields<C>& f) {
  declare_lr_scale(f);
  f.add("effective_lr_scale", &C::effective_lr_scale,
        "Product of lr_scale along the path from the model.", Hint::derived);
  f.add("trainable", &C::trainable, "Whether the parameters train.", Hint::derived);
}
template <class C>
void resolve_training(C& c, ResolveContext& ctx) {
  apply_lr_scale(ctx, c.lr_scale);
  c.effective_lr_scale = ctx.lr_scale;
  c.trainable = ctx.base_trains();
}
}  // namespace

void LayerNormConfig::declare(Fields<LayerNormConfig>& f) {
  declare_epsilon(f);
  declare_weight_initialization(f, "Initialization of the scale; null: ones.");
  f.add("bias", &LayerNormConfig::bias, "Whether a learned bias is added.");
  f.add("bias_initialization", &LayerNormConfig::bias_initialization,
        "Initialization of the bias; null: zeros.", Hint::optional);
  declare_training(f);
}

void LayerNormConfig::resolve(ResolveContext& ctx) {
  if (bias)
    set_default(bias_initialization, ZerosInitConfig{});
  else if (bias_initialization)
    ctx.error(*this, "bias_initialization", "is set but bias is false");
  set_default(weight_initialization, OnesInitConfig{});
  resolve_training(*this, ctx);
}

void RmsNormConfig::declare(Fields<RmsNormConfig>& f) {
  declare_epsilon(f);
  f.add("weight_offset", &RmsNormConfig::weight_offset,
        "Added to the weight before it scales; when not 0 the scaling is computed in float32 "
        "and rounded once (Gemma: 1, x * (1 + weight)).");
  declare_weight_initialization(
      f, "Initialization of the weight; null: 1 - weight_offset (ones; zeros for Gemma).");
  declare_training(f);
}

// The default weight makes a fresh norm the identity whatever the offset.
void RmsNormConfig::resolve(ResolveContext& ctx) {
  if (weight_offset == 0) {
    set_default(weight_initialization, OnesInitConfig{});
  } else if (weight_offset == 1) {
    set_default(weight_initialization, ZerosInitConfig{});
  } else {
    FillInitConfig fill;
    fill.value = 1 - weight_offset;
    set_default(weight_initialization, fill);
  }
  resolve_training(*this, ctx);
}

namespace {
// One weight (and bias) per place the normalization is applied: "weight", or "0.weight",
// "1.weight", ... when it is applied in several places.
std::vector<ParameterShape> norm_parameters(const NormalizationConfig& n, bool with_bias,
                                            double lr_scale, bool trainable) {
  std::vector<ParameterShape> out;
  for (size_t i = 0; i < n.widths.size(); ++i) {
    const std::string prefix = n.widths.size() > 1 ? std::to_string(i) + "." : "";
    out.push_back({prefix + "weight", {n.widths[i]}, lr_scale, trainable});
    if (with_bias) out.push_back({prefix + "bias", {n.widths[i]}, lr_scale, trainable});
  }
  return out;
}
}  // namespace

std::vector<ParameterShape> LayerNormConfig::parameters() const {
  return norm_parameters(*this, bias, effective_lr_scale, trainable);
}

std::vector<ParameterShape> RmsNormConfig::parameters() const {
  return norm_parameters(*this, false, effective_lr_scale, trainable);
}

void register_normalizations(config::Registry& registry) {
  registry.add<LayerNormConfig>();
  registry.add<RmsNormConfig>();
  registry.add<NoNormConfig>();
}

}  // namespace blocks
