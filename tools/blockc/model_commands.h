// The blockc commands that build models (LibTorch): summary, init, forward.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace blockc {

struct ModelArgs {
  std::string model;               // blocks YAML, or a Hugging Face folder (forward)
  std::string map;                 // --map: a YAML name mapping for --weights (forward)
  std::vector<std::string> sets;   // --set overrides
  std::vector<std::string> weights;
  std::string input, output;
  std::string dtype = "float32";
  uint64_t seed = 0;
  bool seed_given = false;
  int depth = 4;
  int64_t context = 2048;
};

int run_summary(const ModelArgs& args);
int run_init(const ModelArgs& args);
int run_forward(const ModelArgs& args);

}  // namespace blockc
