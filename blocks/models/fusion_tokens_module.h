// Token embeddings of a fusion model (torchtune's FusionEmbedding): ids below the decoder's
// vocabulary look up its table, ids past it the fusion embedding's rows; ids outside both are an
// error naming the range, never an out-of-bounds read.
#pragma once

#include "blocks/linear/linear_module.h"
#include "blocks/models/language_model_module.h"

namespace blocks {

// Embeddings [batch, tokens, hidden] of int64 (or int32) `tokens` [batch, tokens]; `fusion` may
// be null. `host`, when given, receives the ids on the CPU as int64 (placeholder checks).
at::Tensor fused_token_embeddings(const LanguageModel& decoder, const Weight* fusion,
                                  const at::Tensor& tokens, const std::string& path,
                                  at::Tensor* host = nullptr);

}  // namespace blocks
