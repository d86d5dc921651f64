// The generation loop: a batch of prompts of different lengths, left-padded with an attention
// mask and per-row positions, prefilled once, then decoded a token a step through the model's
// cache; each step's next ids from generate::choose (Hugging Face's processors, greedy or a
// seeded draw). A row ends at one of its stop ids (kept in its output) or at max_new_tokens.
// Multimodal prompts: the media (early fusion's pixel_values, deep fusion's encoder input and
// memory mask) are given once, at prefill; later steps feed tokens only, the features living in
// the cache (early fusion: as the keys and values of their positions; deep fusion: as each
// cross-attention layer's keys and values). An early-fusion model's placeholder and marker ids
// are never chosen: a placeholder with no media behind it is not a token it can read back.
//
//   blocks::generate::GenerateOptions options{.max_new_tokens = 64,
//                                             .sampling = {.temperature = 0.8, .top_p = 0.95}};
//   auto rows = blocks::generate::generate(*model.module, {prompt_a, prompt_b}, options);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "blocks/models/model_module.h"
#include "framework/generate/guidance.h"
#include "framework/generate/sampling.h"

namespace blocks::generate {

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  Sampling sampling;
  uint64_t seed = 0;              // the draws' generator (sampling only)
  std::vector<int64_t> stop_ids;  // end a row (e.g. the tokenizer's eos)
  int64_t max_positions = 0;      // the model's context; 0: unchecked
  // Each step's new ids, one per row (-1 for a row that has ended), as they are chosen.
  std::function<void(const std::vector<int64_t>&)> on_step;
  // Whether row `row`, its new ids so far given, ends here (stop strings); its stop is "stop".
  std::function<bool(size_t row, const std::vector<int64_t>& ids)> stop_when;
  // Classifier-free guidance: with unconditional prompts (one per prompt, e.g. a negative prompt
  // or a lone BOS), a second stream decodes alongside with its own cache, fed the same chosen
  // ids, and each step's scores are guide(conditional, unconditional, scale, space).
  std::vector<std::vector<int64_t>> unconditional;
  double guidance_scale = 1.0;
  GuidanceSpace guidance_space = GuidanceSpace::log_probs;
  // Sampling restricted to ids [allowed_begin, allowed_end) (mixed-modal decoding); 0, 0: all.
  int64_t allowed_begin = 0, allowed_end = 0;
  // Ids never chosen, beside an early-fusion model's placeholders and markers.
  std::vector<int64_t> suppressed_ids;
  // Inputs given with the prompts at prefill only, by name, batch rows as the prompts (the
  // model's check_inputs names what it does not take). A per-token tensor (deep fusion's
  // memory_mask [batch, tokens, ...]) spans the left-padded width: the longest prompt.
  std::map<std::string, at::Tensor> prefill_inputs;
};

struct GeneratedRow {
  std::vector<int64_t> ids;       // the new tokens, a stop id last when one ended the row
  std::vector<double> log_probs;  // of each new token under the processed distribution
  std::string stop = "length";    // "stop" (a stop id) or "length" (max_new_tokens)
};

// The ids an early-fusion model reads as media, never chosen: its placeholders and markers.
std::set<int64_t> media_ids(const ModelModule& model);

// Throws SamplingError for bad settings, an empty prompt, or prompt + max_new_tokens past
// max_positions (naming both). The model is run as it is (the caller puts it in eval mode).
std::vector<GeneratedRow> generate(ModelModule& model,
                                   const std::vector<std::vector<int64_t>>& prompts,
                                   const GenerateOptions& options);

}  // namespace blocks::generate
