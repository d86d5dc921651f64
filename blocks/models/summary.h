// `blockc summary`: the module tree of a built model (usually on the meta device) grouped by
// owning config path, so the layers of a repeat collapse to one line "x32"; parameter counts,
// trainable counts, lr scales, bytes and forward FLOPs per token.
#pragma once

#include <string>

#include "framework/nn/builder.h"

namespace blocks {

struct SummaryOptions {
  int depth = 4;           // config-path levels below the model to show
  int64_t context = 2048;  // sequence length for the attention term of the FLOPs
  std::string title;       // first line, e.g. the file name
};

struct SummaryTotals {
  int64_t parameters = 0, trainable = 0, tensors = 0;
  // Forward FLOPs per token: what each config reports for its own computation
  // (config::Config::forward_flops), once per position it runs at.
  double flops_per_token = 0;
};

SummaryTotals summary_totals(const config::Config& model, const nn::ParameterTable& table,
                             int64_t context);
std::string summarize(const config::Config& model, const nn::ParameterTable& table,
                      const SummaryOptions& options);

}  // namespace blocks
