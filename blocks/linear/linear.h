// LinearConfig: one logical linear layer (fused layers such as key/value keep one per part).
// Its defaults come from the parent config during resolution (Fast-LLM's customizable
// defaults): the parent fills `defaults`, and unset fields take them.
#pragma once

#include "blocks/kinds.h"

namespace blocks {

struct LinearConfig : Declared<LinearConfig, config::Config> {
  static constexpr std::string_view type_name = "linear";
  static constexpr std::string_view type_doc =
      "A linear layer: bias, initialization, lr scale, PEFT; unset fields default from the parent.";

  std::optional<bool> bias;
  Dynamic<InitializationConfig> weight_initialization;
  Dynamic<InitializationConfig> bias_initialization;
  double lr_scale = 1.0;
  std::optional<bool> apply_peft;
  double effective_lr_scale = 1.0;  // derived
  bool trainable = true;            // derived

  // Set by the parent during resolution, before this config resolves; not a field.
  struct Defaults {
    bool bias = false;
    Dynamic<InitializationConfig> weight_initialization;
    Dynamic<InitializationConfig> bias_initialization;
    bool apply_peft = false;
  } defaults;
  // Of the `copies` below, how many each token passes through (MoE: top_k); unset: all. Set
  // by the parent during resolution; not a field.
  std::optional<int64_t> active_copies;
  // Shape, set by the parent during resolution; not fields. `copies` > 1 stacks independent
  // layers (MoE experts) into one [copies, out, in] weight.
  int64_t in_features = 0;
  int64_t out_features = 0;
  int64_t copies = 1;
  // From the model's PEFT during resolution; not fields (the model's `peft` states them once).
  bool adapters_train = true;  // false under a fusion model's frozen part
  int64_t lora_rank = 0;
  double lora_alpha = 0.0;
  double lora_dropout = 0.0;

  static void declare(Fields<LinearConfig>& f);
  void resolve(ResolveContext& ctx) override;
  // weight [out, in], bias [out]; with LoRA, lora_a [rank, in] and lora_b [out, rank].
  std::vector<ParameterShape> parameters() const override;
  // Weight and LoRA adapters of the active copies; the bias is added, not multiplied.
  double forward_flops(const config::FlopContext& context) const override;
  void set_shape(int64_t in, int64_t out, int64_t count = 1) {
    in_features = in;
    out_features = out;
    copies = count;
  }
};

// A parameter that is not a linear layer: embeddings, an untied output matrix, gates.
struct WeightConfig : Declared<WeightConfig, config::Config> {
  static constexpr std::string_view type_name = "weight";
  static constexpr std::string_view type_doc =
      "A parameter tensor that is not a linear layer (embeddings, output matrix, gates).";

  Dynamic<InitializationConfig> initialization;
  double lr_scale = 1.0;
  double effective_lr_scale = 1.0;  // derived
  bool trainable = true;            // derived

  Dynamic<InitializationConfig> default_initialization;  // set by the parent; not a field
  std::vector<int64_t> shape;                            // set by the parent; not a field
  // Whether each token multiplies through this weight (an output matrix, a convolution);
  // false for lookups (embeddings) and weights its owner counts itself (Mamba's A, in the
  // scan). Set by the parent during resolution; not a field.
  bool multiplied = true;

  static void declare(Fields<WeightConfig>& f);
  void resolve(ResolveContext& ctx) override;
  std::vector<ParameterShape> parameters() const override;
  double forward_flops(const config::FlopContext& context) const override;
};

// The default weight initialization of linears: normal(0, init_std), where init_std comes
// from the nearest `init_std` shortcut, else 0.02. `scaled` gives GPT-2's scaled_normal for
// projections into the residual stream.
Dynamic<InitializationConfig> default_weight_init(const ResolveContext& ctx, bool scaled = false);

// Fills a child linear's defaults: bias from `add_linear_biases` (else false), weight init
// as above, zero bias init, and `apply_peft` when a PEFT method is active.
void set_linear_defaults(LinearConfig& linear, const ResolveContext& ctx, bool scaled = false,
                         bool apply_peft = false);

// Multiplies a config's own lr_scale into the context, for its children.
void apply_lr_scale(ResolveContext& ctx, double lr_scale);

// The `lr_scale` field, declared the same way by every config that has one.
template <class C>
void declare_lr_scale(Fields<C>& f) {
  f.add("lr_scale", &C::lr_scale,
        "Learning-rate multiplier, times every lr_scale above it; 0 freezes.", Hint::optional)
      .min(0);
}

}  // namespace blocks
