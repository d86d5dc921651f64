// The embeddings module's scale against transformers' GemmaModel normalizer (the factor is a
// tensor of the activation dtype, so bfloat16 rounds it), for token ids and for given input
// embeddings alike; the reference is tests/support/feature_references.py.
#include "blocks/embeddings/embeddings_module.h"

#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

// sqrt(48): bfloat16 rounds it to 6.9375, far enough from 6.9282 to tell the two apart.
const double kScale = std::sqrt(48.0);
const std::string kScaleText = "6.928203230275509";

Model scaled_model(at::ScalarType dtype, const std::string& embeddings) {
  ModelText text;
  text.hidden_size = 48;
  text.layers = 1;
  Model model = build_text(replace(text.text(), "{vocab_size: 100}", embeddings), dtype, 3);
  model.module->eval();
  return model;
}

struct Looked {
  at::Tensor ids, word, from_tokens, from_embeddings;
};

Looked look_up(at::ScalarType dtype) {
  Model model = scaled_model(dtype, "{vocab_size: 100, scale: " + kScaleText + "}");
  auto embeddings = find_module<Embeddings>(*model.module, "embeddings");
  Looked r;
  r.ids = at::randint(0, 100, {2, 7}, at::make_generator<at::CPUGeneratorImpl>(4),
                      at::TensorOptions().dtype(at::kLong));
  const at::Tensor positions = at::arange(7, at::kLong).unsqueeze(0).expand({2, 7});
  r.word = embeddings->word->weight.detach();
  r.from_tokens = embeddings->forward(r.ids, {}, positions);
  r.from_embeddings = embeddings->forward({}, at::embedding(r.word, r.ids), positions);
  return r;
}

void expect_gemma_normalizer(at::ScalarType dtype) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Looked r = look_up(dtype);
  EXPECT_EQ(r.from_tokens.scalar_type(), dtype);
  auto ref = run_reference(
      "from feature_references import scale_embeddings\n"
      "save({'out': scale_embeddings(inputs['word'][inputs['ids']], 48 ** 0.5)}, OUTPUT)",
      {{"word", r.word}, {"ids", r.ids}});
  ASSERT_TRUE(ref.count("out"));
  EXPECT_EQ(ref["out"].scalar_type(), dtype);
  EXPECT_TRUE(close(r.from_tokens, ref["out"], 0, 0));
  EXPECT_TRUE(close(r.from_embeddings, ref["out"], 0, 0));
}

TEST(EmbeddingsModule, ScaleMatchesGemmaInFloat32) { expect_gemma_normalizer(at::kFloat); }

TEST(EmbeddingsModule, ScaleMatchesGemmaInBfloat16) { expect_gemma_normalizer(at::kBFloat16); }

TEST(EmbeddingsModule, Bfloat16ScalesByTheRoundedFactor) {
  const Looked r = look_up(at::kBFloat16);
  const at::Tensor looked = at::embedding(r.word, r.ids);
  // Each element is looked * 6.9375 rounded once; the unrounded factor gives other values.
  EXPECT_TRUE(close(r.from_tokens, (looked.to(at::kFloat) * 6.9375).to(at::kBFloat16), 0, 0));
  EXPECT_FALSE(close(r.from_tokens, (looked.to(at::kFloat) * kScale).to(at::kBFloat16), 0, 0));
}

TEST(EmbeddingsModule, ScaleAppliesBeforeLearnedPositions) {
  Model model = scaled_model(at::kFloat, "{vocab_size: 100, max_positions: 16, scale: 2.5}");
  auto embeddings = find_module<Embeddings>(*model.module, "embeddings");
  const at::Tensor ids = at::tensor({3, 1, 4, 1, 5}, at::kLong).unsqueeze(0);
  const at::Tensor positions = at::tensor({6, 7, 8, 9, 10}, at::kLong).unsqueeze(0);
  const at::Tensor expected = 2.5 * at::embedding(embeddings->word->weight, ids) +
                              at::embedding(embeddings->position->weight, positions);
  EXPECT_TRUE(close(embeddings->forward(ids, {}, positions), expected, 0, 1e-6));
}

TEST(EmbeddingsModule, UnitScaleLeavesTheLookUpUntouched) {
  Model model = scaled_model(at::kBFloat16, "{vocab_size: 100}");
  auto embeddings = find_module<Embeddings>(*model.module, "embeddings");
  const at::Tensor ids = at::tensor({0, 99, 42}, at::kLong).unsqueeze(0);
  const at::Tensor positions = at::arange(3, at::kLong).unsqueeze(0);
  EXPECT_TRUE(at::equal(embeddings->forward(ids, {}, positions),
                        at::embedding(embeddings->word->weight, ids)));
}

}  // namespace
}  // namespace blocks::testing
