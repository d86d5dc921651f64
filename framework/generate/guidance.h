// Classifier-free guidance of a conditional stream by an unconditional (negative-prompt) one,
// each decoding with its own cache: Hugging Face's UnbatchedClassifierFreeGuidanceLogitsProcessor
// (logits_process.py) on log-probabilities, scale (cond - uncond) + uncond after a log-softmax of
// each, or the same formula on raw logits (CM3Leon, JAM). Scale 1 returns the conditional scores
// untouched (plain decoding, as HF's processor does); larger scales push away from the
// unconditional stream.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace blocks::generate {

enum class GuidanceSpace { log_probs, logits };

// "log_probs" or "logits"; anything else is a SamplingError listing them.
GuidanceSpace parse_guidance_space(const std::string& name);

// `conditional` and `unconditional` [batch, vocab]: the guided scores, float32.
at::Tensor guide(const at::Tensor& conditional, const at::Tensor& unconditional, double scale,
                 GuidanceSpace space);

}  // namespace blocks::generate
