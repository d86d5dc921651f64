#include "framework/generate/guidance.h"

#include "framework/generate/sampling.h"

namespace blocks::generate {

GuidanceSpace parse_guidance_space(const std::string& name) {
  if (name == "log_probs") return GuidanceSpace::log_probs;
  if (name == "logits") return GuidanceSpace::logits;
  throw SamplingError("unknown guidance space '" + name + "' (log_probs, logits)");
}

at::Tensor guide(const at::Tensor& conditional, const at::Tensor& unconditional, double scale,
                 GuidanceSpace space) {
  if (conditional.sizes() != unconditional.sizes())
    throw SamplingError("the conditional and unconditional scores differ in shape");
  at::Tensor c = conditional.to(at::kFloat), u = unconditional.to(at::kFloat);
  // As HF's processor: scale 1 is plain decoding, the scores untouched.
  if (scale == 1.0) return c;
  if (space == GuidanceSpace::log_probs) {
    c = c.log_softmax(-1);
    u = u.log_softmax(-1);
  }
  return scale * (c - u) + u;
}

}  // namespace blocks::generate
