// The modules of `linear` and `weight`: y = x W^T + b, with LoRA adapters
// (Hu et al. 2021: y += (alpha / rank) * dropout(x) A^T B^T, B zero at init) where the config
// says apply_peft. Stacked linears (MoE experts, `copies` > 1) hold [copies, out, in] weights
// and are used by their owner directly.
#pragma once

#include "blocks/linear/linear.h"
#include "blocks/modules.h"

namespace blocks {

class Linear : public torch::nn::Module {
 public:
  Linear(const LinearConfig& config, Builder& builder, const std::string& path);
  at::Tensor forward(const at::Tensor& x);
  // Folds the adapters into the weight (W += alpha / rank * B A) and zeroes B, so the output is
  // unchanged and the weight alone is the fine-tuned layer (for export). False without LoRA.
  bool merge_adapters();
  bool has_adapters() const { return lora_a.defined(); }
  void pretty_print(std::ostream& stream) const override;

  at::Tensor weight, bias, lora_a, lora_b;
  int64_t in_features, out_features, copies;
  double lora_scale = 0.0;
  double lora_dropout = 0.0;
  std::string path;
};

class Weight : public torch::nn::Module {
 public:
  Weight(const WeightConfig& config, Builder& builder, const std::string& path);
  void pretty_print(std::ostream& stream) const override;
  at::Tensor weight;
};

// Merges the adapters of every Linear below `root`; returns how many were merged.
int64_t merge_adapters(torch::nn::Module& root);

}  // namespace blocks
