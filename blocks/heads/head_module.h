// The LM head module: final normalization, then logits against the output matrix (its own, or
// the token embeddings when tied).
#pragma once

#include "blocks/heads/head.h"
#include "blocks/linear/linear_module.h"
#include "blocks/modules.h"

namespace blocks {

class Head : public torch::nn::Module {
 public:
  Head(const HeadConfig& config, Builder& builder, const std::string& path);
  // Ties the output matrix to `embeddings` ([vocab, hidden]); only for tied heads.
  void tie(const at::Tensor& embeddings) { tied_ = embeddings; }
  at::Tensor forward(const at::Tensor& x);
  std::shared_ptr<NormModule> normalization;
  std::shared_ptr<Weight> output;

 private:
  at::Tensor tied_;  // not registered: it belongs to the embeddings
  std::string path_;
};

}  // namespace blocks
