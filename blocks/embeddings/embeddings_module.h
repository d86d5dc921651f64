// The embeddings module: token lookup (or ready input embeddings), plus learned positions.
#pragma once

#include "blocks/embeddings/embeddings.h"
#include "blocks/linear/linear_module.h"
#include "blocks/modules.h"

namespace blocks {

class Embeddings : public torch::nn::Module {
 public:
  Embeddings(const EmbeddingsConfig& config, Builder& builder, const std::string& path);
  // `tokens` int64 [batch, tokens], or `embeddings` [batch, tokens, hidden] (exactly one
  // defined); `positions` int64 [batch, tokens].
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& embeddings,
                     const at::Tensor& positions);
  std::shared_ptr<Weight> word, position;

 private:
  int64_t vocab_size_, hidden_size_, max_positions_;
  double scale_, dropout_;
  std::string path_;
};

}  // namespace blocks
