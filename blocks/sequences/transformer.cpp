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
  f.add("mixer", &TransformerConfig::mixer,
        "Token mixer (attention, mamba); leave it out for a block with only an MLP.");
  f.add("mlp", &TransformerConfig::mlp,
        "Channel mixer (mlp, gated, moe); leave it out for a block with only a mixer (pure "
        "Mamba stacks).");
  f.add("normalization", &TransformerConfig::normalization,
        "Normalization of the first branch: the mixer's, or the MLP's in a block without a "
        "mixer (and of the others unless they are set).")
      .required();
  f.add("mlp_normalization", &TransformerConfig::mlp_normalization,
        "Normalization of the MLP branch after a mixer; default: same as normalization. Not "
        "allowed in a block of one branch.");
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
    if (mixer && mlp) set_default(mlp_normalization, normalization);
    if (normalization_placement == "sub") set_default(sub_normalization, normalization);
  }
  const int64_t hidden = ctx.hidden_size.value_or(0);
  if (normalization) normalization->widths = {hidden};
  if (mlp_normalization) mlp_normalization->widths = {hidden};
  apply_lr_scale(ctx, lr_scale);
}

std::vector<config::FlowStage> TransformerConfig::flow() const {
  std::vector<config::FlowStage> stages;
  auto branch = [&](const char* field, const char* norm) {
    if (normalization_placement == "post")
      stages.push_back({.fields = {field}, .residual = true, .after = {norm}});
    else
      stages.push_back({.fields = {norm, field}, .residual = true});
  };
  if (mixer) branch("mixer", "normalization");
  if (mlp) branch("mlp", mixer ? "mlp_normalization" : "normalization");
  return stages;
}

void TransformerConfig::finish(ResolveContext&) {
  // Sub-LN normalizes each branch's inner activations, known once the branches are resolved.
  if (sub_normalization && mixer && mlp)
    sub_normalization->widths = {mixer->inner_width(), mlp->inner_width()};
}

namespace {

// The branch a block of one branch lacks ("mixer", "mlp"), or "" with both.
std::string missing_branch(const TransformerConfig& c) {
  return !c.mixer ? "mixer" : !c.mlp ? "mlp" : "";
}

}  // namespace

void TransformerConfig::validate(const ResolveContext& ctx) const {
  if (!mixer && !mlp) {
    ctx.error(*this, "", "a transformer block needs a mixer, an mlp or both; it has neither");
    return;
  }
  const std::string missing = missing_branch(*this);
  if (mlp_normalization && !missing.empty())
    ctx.error(*this, "mlp_normalization",
              "is unused in a block without " + std::string(missing == "mlp" ? "an " : "a ") +
                  missing + " (its one branch is normalized by `normalization`)");
  if (normalization_placement == "sub" && !missing.empty())
    ctx.error(*this, "normalization_placement",
              "sub needs both a mixer and an MLP (this block has no " + missing + ")");
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
