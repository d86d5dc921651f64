#include "blocks/embeddings/embeddings_module.h"

namespace blocks {

Embeddings::Embeddings(const EmbeddingsConfig& c, Builder& b, const std::string& path)
    : vocab_size_(c.vocab_size),
      hidden_size_(c.word.shape.at(1)),
      max_positions_(c.max_positions.value_or(0)),
      scale_(c.scale),
      dropout_(c.dropout),
      path_(path) {
  word = register_module("word", b.build_as<Weight>(c.word, child_path(c, path, c.word)));
  if (c.position)
    position = register_module(
        "position", b.build_as<Weight>(*c.position, child_path(c, path, *c.position)));
}

at::Tensor Embeddings::forward(const at::Tensor& tokens, const at::Tensor& embeddings,
                               const at::Tensor& positions) {
  at::Tensor x;
  if (tokens.defined()) {
    if (tokens.scalar_type() != at::kLong && tokens.scalar_type() != at::kInt)
      throw InputError(path_, "token ids must be int64 (or int32), got " +
                                  std::string(c10::toString(tokens.scalar_type())));
    if (tokens.dim() != 2)
      throw InputError(path_, "token ids must be [batch, tokens], got shape " +
                                  c10::str(tokens.sizes()));
    if (tokens.numel() > 0) {
      // One host read for both bounds: an id out of range would otherwise read past the table
      // (or trip a device-side assert on CUDA).
      const at::Tensor bounds = at::stack({tokens.min(), tokens.max()}).to(at::kCPU);
      const int64_t low = bounds[0].item<int64_t>(), high = bounds[1].item<int64_t>();
      if (low < 0 || high >= vocab_size_)
        throw InputError(path_, "token ids must lie in [0, " + std::to_string(vocab_size_) +
                                    "), got values in [" + std::to_string(low) + ", " +
                                    std::to_string(high) + "]");
    }
    x = at::embedding(word->weight, tokens);
  } else {
    if (embeddings.dim() != 3 || embeddings.size(2) != hidden_size_)
      throw InputError(path_, "input embeddings must be [batch, tokens, " +
                                  std::to_string(hidden_size_) + "], got shape " +
                                  c10::str(embeddings.sizes()));
    if (!at::isFloatingType(embeddings.scalar_type()))
      throw InputError(path_, "input embeddings must be floating point, got " +
                                  std::string(c10::toString(embeddings.scalar_type())));
    x = embeddings.to(word->weight.scalar_type());
  }
  // A 0-dim tensor of x's dtype, as transformers' Gemma builds its normalizer: the factor is
  // rounded to bfloat16 in a bfloat16 model (sqrt(3072) = 55.43 becomes 55.5).
  if (scale_ != 1.0) x = x * at::scalar_tensor(scale_, x.options());
  if (position) {
    const int64_t last = positions.numel() ? positions.max().item<int64_t>() : 0;
    if (last >= max_positions_)
      throw InputError(path_, "position " + std::to_string(last) +
                                  " is past the position table (max_positions " +
                                  std::to_string(max_positions_) + ")");
    x = x + at::embedding(position->weight, positions);
  }
  return blocks::dropout(x, dropout_, is_training());
}

void register_modules_embeddings(nn::ModuleRegistry& modules) {
  modules.add<EmbeddingsConfig>([](const EmbeddingsConfig& c, Builder& b,
                                   const std::string& path) {
    return std::make_shared<Embeddings>(c, b, path);
  });
}

}  // namespace blocks
