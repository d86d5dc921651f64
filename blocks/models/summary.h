// `blockc summary`: the parameters of a model by owning config path, so the layers of a repeat
// collapse to one line "x32"; parameter counts, trainable counts, lr scales, bytes (float32 as
// built, and bfloat16) and forward FLOPs per token. From the config layer alone: nothing is
// built or allocated, and a repeat costs one layer whatever its length.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "framework/config/config.h"

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
  double flops_per_token = 0;  // a fusion model's: its decoder's
  // A fusion model's encoders with their connectors: forward FLOPs per media item, by name.
  std::vector<std::pair<std::string, double>> media_flops;
};

SummaryTotals summary_totals(const config::Config& model, int64_t context);
std::string summarize(const config::Config& model, const SummaryOptions& options);

}  // namespace blocks
