// A Gemma-1-like model written in blocks YAML (embeddings scaled by sqrt(hidden_size), rms_norms
// with weight_offset 1, GeGLU with the tanh GELU, a head size of its own, a tied head) against a
// plain-PyTorch Gemma forward written from transformers' modeling_gemma.py
// (tests/support/feature_references.py).
#include <algorithm>

#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

// hidden 48 with 4 heads of 16 (not 48 / 4 = 12) and one key/value group, as gemma-2b has.
const char* kGemmaLike = R"(version: 1
model:
  type: language_model
  hidden_size: 48
  embeddings: {vocab_size: 100, scale: 6.928203230275509}
  decoder:
    type: repeat
    num_layers: 2
    block:
      type: transformer
      mixer: {type: attention, heads: 4, head_groups: 1, head_size: 16, rotary: {type: default}}
      mlp: {type: gated, intermediate_size: 96, activation: gelu_tanh}
      normalization: {type: rms_norm, epsilon: 1.0e-6, weight_offset: 1}
  head:
    normalization: {type: rms_norm, epsilon: 1.0e-6, weight_offset: 1}
    tied: true
)";

Model gemma_like(at::ScalarType dtype) {
  Model model = build_text(kGemmaLike, dtype, 5);
  model.module->eval();
  // Fresh offset norms are the identity (zero weights); random ones test the offset.
  at::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(6);
  for (auto& p : model.parameters)
    if (p.name.find("normalization.weight") != std::string::npos)
      p.tensor.copy_(at::randn(p.tensor.sizes(), generator) * 0.3);
  return model;
}

at::Tensor token_ids() {
  return at::randint(0, 100, {2, 9}, at::make_generator<at::CPUGeneratorImpl>(8),
                     at::TensorOptions().dtype(at::kLong));
}

TEST(GemmaLikeModel, ResolvesWithTheGemmaFields) {
  const auto doc = resolved(kGemmaLike);
  EXPECT_DOUBLE_EQ(doc["model"]["embeddings"]["scale"].get<double>(), std::sqrt(48.0));
  const auto& block = doc["model"]["decoder"]["block"];
  for (const char* norm : {"normalization", "mlp_normalization"}) {
    EXPECT_DOUBLE_EQ(block[norm]["weight_offset"].get<double>(), 1.0) << norm;
    EXPECT_EQ(block[norm]["weight_initialization"]["type"], "zeros") << norm;
  }
  EXPECT_EQ(doc["model"]["head"]["normalization"]["weight_initialization"]["type"], "zeros");
  EXPECT_TRUE(doc["model"]["head"]["output"].is_null());
}

TEST(GemmaLikeModel, MatchesPlainPyTorchGemma) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  Model model = gemma_like(at::kFloat);
  std::vector<std::string> names;
  for (const auto& p : model.parameters) names.push_back(p.name);
  EXPECT_EQ(std::count(names.begin(), names.end(), "head.output.weight"), 0) << "tied";
  const at::Tensor ids = token_ids();
  const at::Tensor logits = model.module->forward(ids).logits;
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 9, 100}));
  auto inputs = named_parameters(model);
  inputs["tokens"] = ids;
  auto ref = run_reference(
      "from feature_references import gemma\n"
      "save({'logits': gemma(inputs, inputs['tokens'], layers=2, heads=4, groups=1, "
      "head_size=16, theta=10000.0)}, OUTPUT)",
      inputs);
  ASSERT_TRUE(ref.count("logits"));
  EXPECT_TRUE(close(logits, ref["logits"], 1e-5, 1e-5));
}

// The float32 model's weights rounded to bfloat16 give nearly its logits.
TEST(GemmaLikeModel, RunsInBfloat16) {
  const at::Tensor ids = token_ids();
  Model full = gemma_like(at::kFloat);
  Model rounded = build_text(kGemmaLike, at::kBFloat16);
  rounded.module->eval();
  {
    const auto weights = named_parameters(full);
    at::NoGradGuard no_grad;
    for (auto& p : rounded.parameters) p.tensor.copy_(weights.at(p.name));
  }
  const at::Tensor half = rounded.module->forward(ids).logits;
  EXPECT_EQ(half.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(close(half, full.module->forward(ids).logits, 0.05, 0.1));
}

}  // namespace
}  // namespace blocks::testing
