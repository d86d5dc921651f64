// The next-token choice of a generation loop: Hugging Face's logits processors and warpers
// (transformers/generation/logits_process.py), in the order generate() applies them:
// repetition penalty, then temperature, top-k, top-p, min-p; then greedy argmax or a seeded
// draw from the softmax.
//
//   blocks::generate::Sampling s{.temperature = 0.8, .top_p = 0.95};
//   s.check();                                            // bad settings name themselves
//   at::Tensor next = blocks::generate::choose(logits, previous, s, generator);  // [batch]
#pragma once

#include <ATen/ATen.h>

#include "framework/config/error.h"

namespace blocks::generate {

class SamplingError : public Error {
 public:
  using Error::Error;
};

struct Sampling {
  bool greedy = false;              // argmax; the warpers below do not change it
  double temperature = 1.0;         // > 0
  int64_t top_k = 0;                // 0: off
  double top_p = 1.0;               // in (0, 1]; 1: off
  double min_p = 0.0;               // in [0, 1]; 0: off
  double repetition_penalty = 1.0;  // > 0; 1: off (CTRL's penalty, as HF applies it)

  // Throws SamplingError naming the setting: temperature <= 0 with sampling, top_p outside
  // (0, 1], min_p outside [0, 1], a negative top_k, repetition_penalty <= 0.
  void check() const;
};

// `logits` [batch, vocab] after each processor that is on, in HF's order; `previous` [batch,
// length] holds the ids the repetition penalty looks at (prompt and generated). Removed tokens
// are -inf. Float logits of any dtype; computed in float32.
at::Tensor process(const at::Tensor& logits, const at::Tensor& previous, const Sampling& s);

// The next id of each row [batch] (int64): argmax of the processed logits when greedy, else a
// draw from their softmax with `generator` (the same seed gives the same ids).
at::Tensor choose(const at::Tensor& logits, const at::Tensor& previous, const Sampling& s,
                  at::Generator generator);

}  // namespace blocks::generate
