#include "blocks/sequences/transformer.h"

#include "blocks/linear/linear.h"

namespace blocks {

void take_shortcuts(std::optional<bool>& add_linear_biases, std::optional<double>& init_std,
                    ResolveContext& ctx) {
  if (add_linear_biases) ctx.add_linear_biases = *add_linear_biases;
  if (init_std) ctx.init_std = *init_std;
  add_linear_biases.reset();
  init_std.reset();
}

void TransformerConfig::declare(Fields<TransformerConfig>& f) {
  f.add("mixer", &TransformerConfig::mixer, "Token mixer (attention, mamba).").required();
  f.add("mlp", &TransformerConfig::mlp, "Channel mixer (mlp, gated, moe).").required();
  f.add("normalization", &TransformerConfig::normalization,
        "Normalization of the mixer branch (and of the others unless they are set).")
      .required();
  f.add("mlp_normalization", &TransformerConfig::mlp_normalization,
        "Normalization of the MLP branch; default: same as normalization.");
  f.add("sub_normalization", &TransformerConfig::sub_normalization,
        "Sub-LN only: normalization before each branch's output projection; default: same as "
        "normalization.");
  f.add("normalization_placement", &TransformerConfig::normalization_placement,
        "pre: x + f(norm(x)); post: norm(x + f(x)); sub: pre plus sub_normalization inside f.")
      .choices({"pre", "post", "sub"});
  f.add("residual_scale", &TransformerConfig::residual_scale,
        "Multiplies the residual stream before each branch is added (DeepNet's alpha).")
      .above(0);
  f.add("dropout", &TransformerConfig::dropout, "Dropout on each branch's output.", Hint::optional)
      .min(0)
      .max(0.999);
  declare_lr_scale(f);
  f.add("add_linear_biases", &TransformerConfig::add_linear_biases,
        "Shortcut: default `bias` of every linear in this block.", Hint::shortcut);
  f.add("init_std", &TransformerConfig::init_std,
        "Shortcut: default weight std of every linear in this block.", Hint::shortcut)
      .min(0);
}

void TransformerConfig::resolve(ResolveContext& ctx) {
  take_shortcuts(add_linear_biases, init_std, ctx);
  if (normalization) {
    set_default(mlp_normalization, normalization);
    if (normalization_placement == "sub") set_default(sub_normalization, normalization);
  }
  const int64_t hidden = ctx.hidden_size.value_or(0);
  if (normalization) normalization->widths = {hidden};
  if (mlp_normalization) mlp_normalization->widths = {hidden};
  apply_lr_scale(ctx, lr_scale);
}

std::vector<config::FlowStage> TransformerConfig::flow() const {
  if (normalization_placement == "post")
    return {{.fields = {"mixer"}, .residual = true, .after = {"normalization"}},
            {.fields = {"mlp"}, .residual = true, .after = {"mlp_normalization"}}};
  return {{.fields = {"normalization", "mixer"}, .residual = true},
          {.fields = {"mlp_normalization", "mlp"}, .residual = true}};
}

void TransformerConfig::finish(ResolveContext&) {
  // Sub-LN normalizes each branch's inner activations, known once the branches are resolved.
  if (sub_normalization && mixer && mlp)
    sub_normalization->widths = {mixer->inner_width(), mlp->inner_width()};
}

void TransformerConfig::validate(const ResolveContext& ctx) const {
  if (normalization_placement == "sub" && mixer && mlp &&
      (mixer->inner_width() <= 0 || mlp->inner_width() <= 0))
    ctx.error(*this, "normalization_placement",
              "sub needs a mixer and an MLP with one inner width (found " +
                  std::string(mixer.type_name()) + " and " + std::string(mlp.type_name()) + ")");
  if (sub_normalization && normalization_placement != "sub")
    ctx.error(
        *this, "sub_normalization",
        "is only used with normalization_placement: sub (found '" + normalization_placement + "')");
}

void register_transformer(config::Registry& registry) { registry.add<TransformerConfig>(); }

}  // namespace blocks
