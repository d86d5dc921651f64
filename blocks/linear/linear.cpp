#include "blocks/linear/linear.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "blocks/init/constant.h"
#include "blocks/init/normal.h"

namespace blocks {

namespace {

// The logical name of the layer being resolved: the field or key that holds it.
std::string own_name(const ResolveContext& ctx, std::string_view type) {
  for (size_t i = ctx.names.size(); i-- > 1;)
    if (ctx.names[i] == type) return ctx.names[i - 1];
  return {};
}

// PEFT targets are matched against every name on the path: the linear's own field name
// (`query`), its parents' fields (`mlp`, `mixer`), and their kinds and types (`attention`).
std::optional<bool> match_targets(const ResolveContext& ctx) {
  auto& targets = ctx.scope->targets;
  if (targets.empty()) return std::nullopt;
  bool matched = false;
  for (auto& t : targets) {
    if (!t.covers(ctx)) continue;
    ++t.matches;
    matched = true;
  }
  return matched;
}

}  // namespace

void apply_lr_scale(ResolveContext& ctx, double lr_scale) {
  const double product = ctx.lr_scale * lr_scale;
  // 1e308 at two levels gave inf (written as `inf`, or `null` in JSON, which cannot be read
  // back); tiny factors gave 0 or a subnormal, silently freezing what nobody set to 0.
  const bool overflow = !std::isfinite(product);
  const bool underflow = product != 0 ? std::fpclassify(product) == FP_SUBNORMAL
                                      : ctx.lr_scale != 0 && lr_scale != 0;
  if (overflow || underflow) {
    std::ostringstream text;
    text << "the lr-scale product " << ctx.lr_scale << " x " << lr_scale << " = " << product
         << (overflow ? " is not a finite number"
                      : " underflows (below the smallest normal double); write lr_scale: 0 "
                        "to freeze");
    ctx.state->diagnostics->error(ctx.mark, ctx.path_of("lr_scale"), text.str());
    ctx.lr_scale = 1.0;  // reported once, here, not again at every parameter below
    return;
  }
  ctx.lr_scale = product;
}

Dynamic<InitializationConfig> default_weight_init(const ResolveContext& ctx, bool scaled) {
  const double std = ctx.init_std.value_or(0.02);
  if (scaled) {
    ScaledNormalInitConfig init;
    init.std = std;
    return init;
  }
  NormalInitConfig init;
  init.std = std;
  return init;
}

void set_linear_defaults(LinearConfig& linear, const ResolveContext& ctx, bool scaled,
                         bool apply_peft) {
  linear.defaults.bias = ctx.add_linear_biases.value_or(false);
  linear.defaults.weight_initialization = default_weight_init(ctx, scaled);
  linear.defaults.bias_initialization = ZerosInitConfig{};
  linear.defaults.apply_peft = apply_peft && ctx.peft_active;
}

void LinearConfig::declare(Fields<LinearConfig>& f) {
  f.add("bias", &LinearConfig::bias, "Whether the layer adds a bias; null: the parent decides.");
  f.add("weight_initialization", &LinearConfig::weight_initialization,
        "Initialization of the weight; null: the parent decides.", Hint::optional);
  f.add("bias_initialization", &LinearConfig::bias_initialization,
        "Initialization of the bias; null: zeros.", Hint::optional);
  declare_lr_scale(f);
  f.add("apply_peft", &LinearConfig::apply_peft,
        "Whether PEFT (e.g. LoRA) adapts this layer; null: PEFT targets or the parent decide.",
        Hint::optional);
  f.add("effective_lr_scale", &LinearConfig::effective_lr_scale,
        "Product of lr_scale along the path from the model.", Hint::derived);
  f.add("trainable", &LinearConfig::trainable,
        "Whether the base weights train: effective_lr_scale > 0, not frozen by a fusion model's "
        "toggles, and no PEFT freezing them.",
        Hint::derived);
}

void LinearConfig::resolve(ResolveContext& ctx) {
  set_default(bias, defaults.bias);
  if (!weight_initialization)
    weight_initialization =
        defaults.weight_initialization ? defaults.weight_initialization : default_weight_init(ctx);
  if (!bias_initialization)
    bias_initialization = defaults.bias_initialization
                              ? defaults.bias_initialization
                              : Dynamic<InitializationConfig>(ZerosInitConfig{});
  const std::string name = own_name(ctx, "linear");
  auto& seen = ctx.scope->linear_names;
  if (!name.empty() && std::find(seen.begin(), seen.end(), name) == seen.end())
    seen.push_back(name);
  // Inside a part that trains in full (modules_to_save) PEFT is off: no target matches there
  // and no adapters are made.
  if (!apply_peft)
    apply_peft = ctx.peft_active ? match_targets(ctx).value_or(defaults.apply_peft)
                                 : defaults.apply_peft;
  apply_lr_scale(ctx, lr_scale);
  effective_lr_scale = ctx.lr_scale;
  trainable = ctx.base_trains();
  adapters_train = ctx.adapters_train();
  lora_rank = ctx.peft_active ? ctx.peft_rank : 0;
  lora_alpha = ctx.lora_alpha;
  lora_dropout = ctx.lora_dropout;
}

std::vector<ParameterShape> LinearConfig::parameters() const {
  if (in_features <= 0 || out_features <= 0) return {};
  auto stacked = [&](std::vector<int64_t> shape) {
    if (copies > 1) shape.insert(shape.begin(), copies);
    return shape;
  };
  std::vector<ParameterShape> out;
  out.push_back({.name = "weight",
                 .shape = stacked({out_features, in_features}),
                 .lr_scale = effective_lr_scale,
                 .trainable = trainable});
  if (bias.value_or(false))
    out.push_back({.name = "bias",
                   .shape = stacked({out_features}),
                   .lr_scale = effective_lr_scale,
                   .trainable = trainable});
  if (apply_peft.value_or(false) && lora_rank > 0) {
    out.push_back({"lora_a", stacked({lora_rank, in_features}), effective_lr_scale, adapters_train,
                   "lora_a"});
    out.push_back({"lora_b", stacked({out_features, lora_rank}), effective_lr_scale, adapters_train,
                   "lora_b"});
  }
  return out;
}

double LinearConfig::forward_flops(const config::FlopContext&) const {
  double elements = 0;
  for (const auto& p : parameters())
    if (p.name != "bias") elements += static_cast<double>(p.numel());
  return 2 * elements / static_cast<double>(copies) *
         static_cast<double>(active_copies.value_or(copies));
}

void WeightConfig::declare(Fields<WeightConfig>& f) {
  f.add("initialization", &WeightConfig::initialization,
        "Initialization; null: the parent decides.", Hint::optional);
  declare_lr_scale(f);
  f.add("effective_lr_scale", &WeightConfig::effective_lr_scale,
        "Product of lr_scale along the path from the model.", Hint::derived);
  f.add("trainable", &WeightConfig::trainable,
        "Whether the weight trains: effective_lr_scale > 0, not frozen by a fusion model's "
        "toggles, and no PEFT freezing it.",
        Hint::derived);
}

void WeightConfig::resolve(ResolveContext& ctx) {
  if (!initialization)
    initialization = default_initialization ? default_initialization : default_weight_init(ctx);
  apply_lr_scale(ctx, lr_scale);
  effective_lr_scale = ctx.lr_scale;
  trainable = ctx.base_trains();
}

std::vector<ParameterShape> WeightConfig::parameters() const {
  if (shape.empty()) return {};
  return {{.name = "weight", .shape = shape, .lr_scale = effective_lr_scale, .trainable = trainable}};
}

double WeightConfig::forward_flops(const config::FlopContext& context) const {
  return multiplied ? config::Config::forward_flops(context) : 0;
}

}  // namespace blocks
