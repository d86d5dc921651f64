#include "framework/generate/sampling.h"

#include <limits>
#include <sstream>

namespace blocks::generate {

namespace {

std::string text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

const double kMinusInfinity = -std::numeric_limits<double>::infinity();

}  // namespace

void Sampling::check() const {
  if (!greedy && !(temperature > 0))
    throw SamplingError("temperature " + text(temperature) +
                        " must be above 0 when sampling (greedy decoding ignores it)");
  if (!(top_p > 0 && top_p <= 1))
    throw SamplingError("top_p " + text(top_p) + " must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1))
    throw SamplingError("min_p " + text(min_p) + " must be in [0, 1]");
  if (top_k < 0) throw SamplingError("top_k " + std::to_string(top_k) + " must be 0 (off) or more");
  if (!(repetition_penalty > 0))
    throw SamplingError("repetition_penalty " + text(repetition_penalty) + " must be above 0");
}

at::Tensor process(const at::Tensor& logits, const at::Tensor& previous, const Sampling& s) {
  s.check();
  at::Tensor scores = logits.to(at::kFloat).clone();
  // RepetitionPenaltyLogitsProcessor: each id seen so far, its score * penalty when negative,
  // / penalty otherwise.
  if (s.repetition_penalty != 1.0 && previous.defined() && previous.numel() > 0) {
    const at::Tensor seen = scores.gather(1, previous);
    const at::Tensor penalized =
        at::where(seen < 0, seen * s.repetition_penalty, seen / s.repetition_penalty);
    scores.scatter_(1, previous, penalized);
  }
  if (s.greedy) return scores;
  // TemperatureLogitsWarper.
  if (s.temperature != 1.0) scores = scores / s.temperature;
  // TopKLogitsWarper: below the k-th largest score, removed.
  if (s.top_k > 0) {
    const int64_t k = std::min<int64_t>(s.top_k, scores.size(-1));
    const at::Tensor kth = std::get<0>(scores.topk(k, -1)).narrow(-1, k - 1, 1);
    scores.masked_fill_(scores < kth, kMinusInfinity);
  }
  // TopPLogitsWarper: ascending order; the smallest whose cumulative probability stays within
  // 1 - top_p go, the largest always stays.
  if (s.top_p < 1.0) {
    const auto [sorted, order] = scores.sort(-1, /*descending=*/false);
    const at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    at::Tensor remove = cumulative <= (1 - s.top_p);
    remove.narrow(-1, remove.size(-1) - 1, 1).fill_(false);
    scores.masked_fill_(remove.scatter(1, order, remove), kMinusInfinity);
  }
  // MinPLogitsWarper: below min_p times the largest probability, removed (the top stays).
  if (s.min_p > 0) {
    const at::Tensor probs = scores.softmax(-1);
    const at::Tensor threshold = std::get<0>(probs.max(-1, /*keepdim=*/true)) * s.min_p;
    at::Tensor remove = probs < threshold;
    remove.scatter_(1, probs.argmax(-1, /*keepdim=*/true), false);
    scores.masked_fill_(remove, kMinusInfinity);
  }
  return scores;
}

at::Tensor choose(const at::Tensor& logits, const at::Tensor& previous, const Sampling& s,
                  at::Generator generator) {
  const at::Tensor scores = process(logits, previous, s);
  if (s.greedy) return scores.argmax(-1);
  return at::multinomial(scores.softmax(-1), 1, /*replacement=*/false, generator).squeeze(-1);
}

}  // namespace blocks::generate
