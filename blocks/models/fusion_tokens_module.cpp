#include "blocks/models/fusion_tokens_module.h"

namespace blocks {

at::Tensor fused_token_embeddings(const LanguageModel& decoder, const Weight* fusion,
                                  const at::Tensor& tokens, const std::string& path,
                                  at::Tensor* host) {
  if (tokens.scalar_type() != at::kLong && tokens.scalar_type() != at::kInt)
    throw InputError(path, "token ids must be int64 (or int32), got " +
                               std::string(c10::toString(tokens.scalar_type())));
  if (tokens.dim() != 2)
    throw InputError(path, "token ids must be [batch, tokens], got shape " +
                               c10::str(tokens.sizes()));
  const at::Tensor& word = decoder.embeddings->word->weight;
  const int64_t vocab = word.size(0);
  const int64_t rows = vocab + (fusion ? fusion->weight.size(0) : 0);
  const at::Tensor ids_on_host = tokens.to(at::kCPU, at::kLong).contiguous();
  if (ids_on_host.numel() > 0) {
    const int64_t low = ids_on_host.min().item<int64_t>();
    const int64_t high = ids_on_host.max().item<int64_t>();
    if (low < 0 || high >= rows)
      throw InputError(path, "token ids must lie in [0, " + std::to_string(rows) + ")" +
                                 (fusion ? " (the decoder's " + std::to_string(vocab) +
                                               " and the fusion embedding's rows)"
                                         : std::string()) +
                                 ", got values in [" + std::to_string(low) + ", " +
                                 std::to_string(high) + "]");
  }
  if (host) *host = ids_on_host;
  const at::Tensor ids = tokens.to(at::kLong);
  if (!fusion) return at::embedding(word, ids);
  const at::Tensor text = at::embedding(word, ids.clamp_max(vocab - 1));
  const at::Tensor extra =
      at::embedding(fusion->weight, (ids - vocab).clamp_min(0)).to(word.scalar_type());
  return at::where(ids.lt(vocab).unsqueeze(-1), text, extra);
}

}  // namespace blocks
