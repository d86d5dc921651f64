// rms_norm's weight offset against transformers' GemmaRMSNorm (float32 throughout, one cast at
// the end) in float32 and bfloat16, today's Llama numerics at offset 0, and the offset in
// query/key norm's two places. References: tests/support/feature_references.py and
// reference_models.py.
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

std::string norm_text(const std::string& normalization) {
  ModelText text;
  text.layers = 1;
  text.normalization = normalization;
  return text.text();
}

// Replaces every parameter whose name ends with `suffix` by N(0, 0.5^2) values.
void randomize(Model& model, const std::string& suffix, uint64_t seed) {
  at::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : model.parameters)
    if (p.name.size() >= suffix.size() &&
        p.name.compare(p.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      p.tensor.copy_(at::randn(p.tensor.sizes(), generator) * 0.5);
}

at::Tensor input(at::ScalarType dtype, int64_t width = 64) {
  return (at::randn({2, 5, width}, at::make_generator<at::CPUGeneratorImpl>(9)) * 3).to(dtype);
}

struct Normed {
  at::Tensor x, weight, out;
};

Normed apply(const std::string& normalization, at::ScalarType dtype) {
  Model model = build_text(norm_text(normalization), dtype, 1);
  randomize(model, "decoder.0.normalization.weight", 2);
  auto norm = find_module<NormModule>(*model.module, "decoder.0.normalization");
  Normed r;
  r.x = input(dtype);
  r.weight = named_parameters(model).at("decoder.0.normalization.weight");
  r.out = norm->forward(r.x, 0);
  return r;
}

at::Tensor reference(const std::string& call, const Normed& r) {
  auto ref = run_reference(
      "from feature_references import gemma_rms_norm\nfrom reference_models import rms_norm\n"
      "save({'out': " +
          call + "}, OUTPUT)",
      {{"x", r.x}, {"weight", r.weight}});
  EXPECT_TRUE(ref.count("out"));
  return ref.count("out") ? ref["out"] : at::Tensor();
}

void expect_gemma(at::ScalarType dtype) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Normed r = apply("{type: rms_norm, epsilon: 1.0e-6, weight_offset: 1}", dtype);
  const at::Tensor ref = reference("gemma_rms_norm(inputs['x'], inputs['weight'], 1e-6)", r);
  ASSERT_TRUE(ref.defined());
  EXPECT_EQ(r.out.scalar_type(), dtype);
  EXPECT_TRUE(close(r.out, ref, 0, 0));
}

TEST(NormalizationModule, WeightOffsetMatchesGemmaInFloat32) { expect_gemma(at::kFloat); }

TEST(NormalizationModule, WeightOffsetMatchesGemmaInBfloat16) { expect_gemma(at::kBFloat16); }

// The same scale written both ways: offset 0 rounds the normalized input to bfloat16 before the
// weight scales it (Llama), offset 1 rounds once at the end (Gemma), and the results differ.
TEST(NormalizationModule, ZeroOffsetKeepsLlamaNumerics) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Normed gemma = apply("{type: rms_norm, weight_offset: 1}", at::kBFloat16);
  Model model = build_text(norm_text("{type: rms_norm}"), at::kBFloat16, 1);
  {
    at::NoGradGuard no_grad;
    for (auto& p : model.parameters)
      if (p.name == "decoder.0.normalization.weight") p.tensor.copy_(gemma.weight + 1);
  }
  Normed llama{gemma.x, named_parameters(model).at("decoder.0.normalization.weight"), {}};
  llama.out =
      find_module<NormModule>(*model.module, "decoder.0.normalization")->forward(llama.x, 0);
  const at::Tensor ref = reference("rms_norm(inputs['x'], inputs['weight'], 1e-5)", llama);
  ASSERT_TRUE(ref.defined());
  EXPECT_TRUE(close(llama.out, ref, 0, 0));
  EXPECT_FALSE(at::equal(llama.out, gemma.out));
  EXPECT_TRUE(close(llama.out, gemma.out, 0.02, 0.02));
}

// For bfloat16 inputs RMSNorm computes in float32 and rounds once before the weight scales it,
// as Llama's reference (model.py: `self._norm(x.float()).type_as(x) * self.weight`) and
// transformers' LlamaRMSNorm do; no python needed. The same formula in bfloat16 throughout
// differs, so this test tells the two apart.
TEST(NormalizationModule, RmsNormComputesInFloat32ForBfloat16Inputs) {
  Model model = build_text(norm_text("{type: rms_norm, epsilon: 1.0e-5}"), at::kBFloat16, 1);
  randomize(model, "decoder.0.normalization.weight", 2);
  const at::Tensor weight = named_parameters(model).at("decoder.0.normalization.weight");
  const at::Tensor x = input(at::kBFloat16, 64);
  const at::Tensor out =
      find_module<NormModule>(*model.module, "decoder.0.normalization")->forward(x, 0);
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor llama = weight * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + 1e-5)).to(at::kBFloat16);
  EXPECT_TRUE(at::equal(out, llama));
  const at::Tensor in_bfloat16 = weight * (x * at::rsqrt(x.pow(2).mean(-1, true) + 1e-5));
  EXPECT_FALSE(at::equal(in_bfloat16, llama)) << "the check could not tell the two apart";
}

TEST(NormalizationModule, FreshOffsetNormIsUnitScale) {
  Model model = build_text(norm_text("{type: rms_norm, weight_offset: 1}"), at::kFloat, 1);
  EXPECT_TRUE(
      at::equal(named_parameters(model).at("decoder.0.normalization.weight"), at::zeros({64})));
  const at::Tensor x = input(at::kFloat);
  const at::Tensor out =
      find_module<NormModule>(*model.module, "decoder.0.normalization")->forward(x, 0);
  EXPECT_TRUE(close(out, x * at::rsqrt(x.pow(2).mean(-1, true) + 1e-5), 1e-6, 1e-6));
}

TEST(NormalizationModule, WeightOffsetInQueryKeyNormPlaces) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  ModelText text;
  text.layers = 1;
  text.mixer =
      "{type: attention, heads: 4, rotary: {type: default}, qk_norm: {type: rms_norm, "
      "weight_offset: 1}}";
  Model model = build_text(text.text(), at::kFloat, 1);
  randomize(model, "qk_norm.1.weight", 3);
  auto norm = find_module<NormModule>(*model.module, "decoder.0.mixer.qk_norm");
  Normed keys{
      input(at::kFloat, 16), named_parameters(model).at("decoder.0.mixer.qk_norm.1.weight"), {}};
  keys.out = norm->forward(keys.x, 1);
  const at::Tensor ref = reference("gemma_rms_norm(inputs['x'], inputs['weight'], 1e-5)", keys);
  ASSERT_TRUE(ref.defined());
  EXPECT_TRUE(close(keys.out, ref, 0, 0));
  // Queries keep their zero (identity) weight.
  const at::Tensor queries = norm->forward(keys.x, 0);
  EXPECT_TRUE(close(queries, keys.x * at::rsqrt(keys.x.pow(2).mean(-1, true) + 1e-5), 1e-6, 1e-6));
  // And the attention runs with them.
  Step step;
  step.positions = at::arange(5, at::kLong).unsqueeze(0).expand({2, 5});
  const at::Tensor out =
      find_module<MixerModule>(*model.module, "decoder.0.mixer")->forward(input(at::kFloat), step);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 5, 64}));
  EXPECT_TRUE(at::isfinite(out).all().item<bool>());
}

}  // namespace
}  // namespace blocks::testing
