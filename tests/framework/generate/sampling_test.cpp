// The next-token choice against Hugging Face's processors (transformers/generation/
// logits_process.py: RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
// TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper), written out in plain PyTorch in the
// reference script and applied in generate()'s order; sampling frequencies against the analytic
// distribution after the filters (a chi-square test at a fixed seed); seeds reproduce draws;
// bad settings are named; classifier-free guidance's formula.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "framework/generate/guidance.h"
#include "framework/generate/sampling.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

using generate::Sampling;

// HF's classes, their __call__ bodies as plain functions (min_tokens_to_keep = 1).
const char* const kReference = R"(
def repetition(ids, scores, penalty):
    score = torch.gather(scores, 1, ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return scores.scatter(1, ids, score)

def top_k(scores, k):
    k = min(max(k, 1), scores.size(-1))
    remove = scores < torch.topk(scores, k)[0][..., -1, None]
    return scores.masked_fill(remove, -float('inf'))

def top_p(scores, p):
    sorted_logits, sorted_indices = torch.sort(scores, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_remove = cumulative <= (1 - p)
    sorted_remove[..., -1:] = 0
    remove = sorted_remove.scatter(1, sorted_indices, sorted_remove)
    return scores.masked_fill(remove, -float('inf'))

def min_p(scores, p):
    probs = torch.softmax(scores, dim=-1)
    top = probs.amax(dim=-1, keepdim=True)
    remove = probs < p * top
    sorted_indices = torch.argsort(scores, descending=True, dim=-1)
    sorted_remove = torch.gather(remove, dim=-1, index=sorted_indices)
    sorted_remove[..., :1] = False
    remove = sorted_remove.scatter(1, sorted_indices, sorted_remove)
    return scores.masked_fill(remove, -float('inf'))

logits, ids = inputs['logits'], inputs['ids']
out = {}
for name, (penalty, t, k, p, m) in {'all': (1.3, 0.7, 20, 0.9, 0.05), 'top_k': (1.0, 1.0, 5, 1.0, 0.0),
                                    'top_p': (1.0, 1.3, 0, 0.5, 0.0), 'min_p': (1.0, 1.0, 0, 1.0, 0.2),
                                    'penalty': (0.8, 1.0, 0, 1.0, 0.0)}.items():
    s = logits.clone()
    if penalty != 1.0: s = repetition(ids, s, penalty)
    if t != 1.0: s = s / t
    if k > 0: s = top_k(s, k)
    if p < 1.0: s = top_p(s, p)
    if m > 0: s = min_p(s, m)
    out[name] = s
save(out, OUTPUT)
)";

const std::map<std::string, Sampling> kSettings = {
    {"all", {.temperature = 0.7, .top_k = 20, .top_p = 0.9, .min_p = 0.05, .repetition_penalty = 1.3}},
    {"top_k", {.top_k = 5}},
    {"top_p", {.temperature = 1.3, .top_p = 0.5}},
    {"min_p", {.min_p = 0.2}},
    {"penalty", {.repetition_penalty = 0.8}},
};

TEST(Sampling, ProcessorsMatchHuggingFacesInItsOrder) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const at::Tensor logits = at::randn({3, 50}, gen) * 3;
  const at::Tensor ids = at::randint(0, 50, {3, 12}, gen, at::TensorOptions().dtype(at::kLong));
  auto reference = run_reference(kReference, {{"logits", logits}, {"ids", ids}});
  ASSERT_EQ(reference.size(), kSettings.size());
  for (const auto& [name, settings] : kSettings) {
    const at::Tensor got = generate::process(logits, ids, settings);
    const at::Tensor& want = reference.at(name);
    EXPECT_TRUE(at::equal(at::isinf(got), at::isinf(want))) << name << ": the removed tokens";
    const at::Tensor kept = at::isfinite(want);
    EXPECT_LT((got.masked_select(kept) - want.masked_select(kept)).abs().max().item<double>(), 1e-5)
        << name;
    if (name != "penalty") EXPECT_GT(at::isinf(want).sum().item<int64_t>(), 0) << name << " removes some";
  }
}

// 40,000 draws of one row: every count against the softmax of the processed logits (chi-square,
// degrees of freedom = kept tokens - 1, below the 0.999 quantile), none outside the kept set.
TEST(Sampling, DrawFrequenciesFollowTheFilteredDistribution) {
  const at::Tensor logits = at::tensor({2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0}).view({1, 8});
  const Sampling s{.temperature = 0.8, .top_k = 6, .top_p = 0.95};
  const at::Tensor expected = generate::process(logits, {}, s).softmax(-1)[0];
  const int64_t draws = 40000;
  const at::Tensor ids = generate::choose(logits.expand({draws, 8}), {}, s,
                                          at::make_generator<at::CPUGeneratorImpl>(11));
  const at::Tensor counts = at::bincount(ids, {}, 8).to(at::kDouble);
  double chi2 = 0;
  int kept = 0;
  for (int64_t v = 0; v < 8; ++v) {
    const double p = expected[v].item<double>();
    if (p == 0) {
      EXPECT_EQ(counts[v].item<double>(), 0) << "token " << v << " was filtered out";
      continue;
    }
    ++kept;
    const double e = p * draws;
    chi2 += (counts[v].item<double>() - e) * (counts[v].item<double>() - e) / e;
  }
  ASSERT_EQ(kept, 5) << "top-k keeps 6, top-p then drops the least likely";
  EXPECT_LT(chi2, 18.47) << "chi-square 0.999 quantile at 4 degrees of freedom";
  // The same seed draws the same ids; another seed other ones.
  const at::Tensor again = generate::choose(logits.expand({draws, 8}), {}, s,
                                            at::make_generator<at::CPUGeneratorImpl>(11));
  EXPECT_TRUE(at::equal(ids, again));
  const at::Tensor other = generate::choose(logits.expand({draws, 8}), {}, s,
                                            at::make_generator<at::CPUGeneratorImpl>(12));
  EXPECT_FALSE(at::equal(ids, other));
}

TEST(Sampling, GreedyIsTheArgmaxAfterThePenalty) {
  const at::Tensor logits = at::tensor({1.0, 3.0, 2.9, -1.0}).view({1, 4});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  EXPECT_EQ(generate::choose(logits, {}, {.greedy = true}, gen).item<int64_t>(), 1);
  const at::Tensor seen = at::tensor({int64_t{1}}).view({1, 1});
  EXPECT_EQ(generate::choose(logits, seen, {.greedy = true, .repetition_penalty = 1.2}, gen)
                .item<int64_t>(),
            2);
}

TEST(Sampling, BadSettingsAreNamed) {
  auto message = [](const Sampling& s) {
    try {
      s.check();
    } catch (const generate::SamplingError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({.temperature = 0}),
            "temperature 0 must be above 0 when sampling (greedy decoding ignores it)");
  EXPECT_EQ(message({.greedy = true, .temperature = 0}), "no error");
  EXPECT_EQ(message({.top_p = 0}), "top_p 0 must be in (0, 1]");
  EXPECT_EQ(message({.top_p = 1.5}), "top_p 1.5 must be in (0, 1]");
  EXPECT_EQ(message({.min_p = -0.1}), "min_p -0.1 must be in [0, 1]");
  EXPECT_EQ(message({.top_k = -1}), "top_k -1 must be 0 (off) or more");
  EXPECT_EQ(message({.repetition_penalty = 0}), "repetition_penalty 0 must be above 0");
}

}  // namespace
}  // namespace blocks::testing

namespace blocks::testing {
namespace {

// HF's UnbatchedClassifierFreeGuidanceLogitsProcessor.__call__ on log-probabilities, and the
// raw-logit variant, written out; scale 1 returns the conditional scores untouched, as HF's does.
TEST(Guidance, ScaleTimesTheDifferencePlusTheUnconditional) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const at::Tensor cond = at::randn({2, 30}, gen), uncond = at::randn({2, 30}, gen);
  const double scale = 3.0;
  const at::Tensor lc = cond.log_softmax(-1), lu = uncond.log_softmax(-1);
  EXPECT_TRUE(at::allclose(generate::guide(cond, uncond, scale, generate::GuidanceSpace::log_probs),
                           scale * (lc - lu) + lu, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(generate::guide(cond, uncond, scale, generate::GuidanceSpace::logits),
                           scale * (cond - uncond) + uncond, 1e-6, 1e-6));
  EXPECT_TRUE(at::equal(generate::guide(cond, uncond, 1.0, generate::GuidanceSpace::log_probs), cond));
  EXPECT_TRUE(at::equal(generate::guide(cond, uncond, 1.0, generate::GuidanceSpace::logits), cond));
  // Guidance moves the choice away from what the unconditional stream also favours.
  const at::Tensor c = at::tensor({2.0, 1.9, 0.0}).view({1, 3}), u = at::tensor({2.0, 0.0, 0.0}).view({1, 3});
  EXPECT_EQ(c.argmax(-1).item<int64_t>(), 0);
  EXPECT_EQ(generate::guide(c, u, 3.0, generate::GuidanceSpace::logits).argmax(-1).item<int64_t>(), 1);
  try {
    generate::parse_guidance_space("probs");
    ADD_FAILURE() << "no error";
  } catch (const generate::SamplingError& e) {
    EXPECT_EQ(std::string(e.what()), "unknown guidance space 'probs' (log_probs, logits)");
  }
}

}  // namespace
}  // namespace blocks::testing
