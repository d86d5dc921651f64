// The yarn rotary module against transformers' _compute_yarn_parameters (modeling_rope_utils.py,
// v4.55 and later: the version with `truncate`), its cos/sin scaled by the attention factor as
// LlamaRotaryEmbedding does, and apply_rotary_pos_emb; written out in
// tests/support/feature_references.py.
#include <sstream>

#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

struct Rotated {
  at::Tensor q, k, positions, q_out, k_out;
};

// Queries and keys of 4 heads of 16 dims at positions 0..9 and, in the second row, 3000..3009
// (past a 2048-token original context).
Rotated rotate(const std::string& rotary) {
  ModelText text;
  text.layers = 1;
  text.mixer = "{type: attention, heads: 4, rotary: " + rotary + "}";
  Model model = build_text(text.text());
  auto module = find_module<RotaryModule>(*model.module, "decoder.0.mixer.rotary");
  auto generator = at::make_generator<at::CPUGeneratorImpl>(11);
  Rotated r;
  r.q = at::randn({2, 10, 4, 16}, generator);
  r.k = at::randn({2, 10, 4, 16}, generator);
  r.positions = at::stack({at::arange(10, at::kLong), at::arange(3000, 3010, at::kLong)});
  Step step;
  step.positions = r.positions;
  std::tie(r.q_out, r.k_out) = module->forward(r.q, r.k, step);
  return r;
}

void expect_transformers(const std::string& rotary, const std::string& arguments,
                         const std::string& layout) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Rotated r = rotate(rotary);
  auto ref = run_reference(
      "from feature_references import yarn_inv_freq, rotary_cos_sin, rotate\n"
      "inv_freq, factor = yarn_inv_freq(" +
          arguments +
          ")\n"
          "cos, sin = rotary_cos_sin(inv_freq, inputs['positions'], factor)\n"
          "save({'q': rotate(inputs['q'], cos, sin, '" +
          layout +
          "'), 'k': rotate(inputs['k'], "
          "cos, sin, '" +
          layout + "'), 'inv_freq': inv_freq}, OUTPUT)",
      {{"q", r.q}, {"k", r.k}, {"positions", r.positions}});
  ASSERT_TRUE(ref.count("q") && ref.count("k"));
  EXPECT_TRUE(close(r.q_out, ref["q"], 1e-5, 1e-5));
  EXPECT_TRUE(close(r.k_out, ref["k"], 1e-5, 1e-5));
  // The ramp must be partial for the case to test it: some frequencies kept, some divided.
  const at::Tensor plain = 1.0 / at::pow(10000.0, at::arange(0, 16, 2, at::kFloat) / 16.0);
  const at::Tensor ratio = plain / ref["inv_freq"];
  EXPECT_GT(ratio.min().item<double>(), 0.99);
  EXPECT_GT(ratio.max().item<double>(), 1.5);
}

// With head_size 16 and theta 10000 the ramp runs from dimension 2 (32 turns in 2048 tokens,
// 2.02 rounded down) to 6 (1 turn, 5.03 rounded up): kept, ramped and divided frequencies occur.
TEST(RotaryModule, YarnMatchesTransformers) {
  expect_transformers("{type: yarn, scale_factor: 4, original_context_length: 2048}",
                      "10000.0, 16, 4.0, 2048", "half");
}

TEST(RotaryModule, YarnWithoutTruncationGivenFactorAndInterleaved) {
  expect_transformers(
      "{type: yarn, layout: interleaved, scale_factor: 8, original_context_length: 2048, "
      "beta_fast: 16, beta_slow: 2, attention_factor: 1.25, truncate: false}",
      "10000.0, 16, 8.0, 2048, beta_fast=16, beta_slow=2, attention_factor=1.25, truncate=False",
      "interleaved");
}

// The attention factor multiplies cos and sin, so each rotated vector's norm grows by it.
TEST(RotaryModule, YarnAttentionFactorScalesTheRotation) {
  const Rotated r = rotate("{type: yarn, scale_factor: 16, original_context_length: 2048}");
  const double factor = 0.1 * std::log(16.0) + 1;
  EXPECT_TRUE(close(r.q_out.norm(2, -1), r.q.norm(2, -1) * factor, 1e-5, 1e-5));
}

TEST(RotaryModule, YarnPrintsItsFactor) {
  ModelText text;
  text.layers = 1;
  text.mixer =
      "{type: attention, heads: 4, rotary: {type: yarn, scale_factor: 4, "
      "original_context_length: 2048, attention_factor: 1.5}}";
  Model model = build_text(text.text());
  std::ostringstream printed;
  find_module<RotaryModule>(*model.module, "decoder.0.mixer.rotary")->pretty_print(printed);
  EXPECT_EQ(printed.str(), "Rotary(layout=half, head_size=16, attention_factor=1.5)");
}

// torchscale's XPOS (component/xpos_relative_position.py) on 2048 tokens, as its
// MultiheadAttention calls it without a cache: queries scaled up, keys down, the exponent
// centred on the sequence. Written out in tests/support/feature_references.py.
TEST(RotaryModule, XposCentresItsScaleOnTheSequenceAsTorchscale) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  ModelText text;
  text.layers = 1;
  text.mixer = "{type: attention, heads: 4, rotary: {type: xpos, scale_base: 512.0}}";
  Model model = build_text(text.text());
  auto module = find_module<RotaryModule>(*model.module, "decoder.0.mixer.rotary");
  const at::Tensor q = at::ones({1, 2048, 1, 16}), k = at::ones({1, 2048, 1, 16});
  Step step;
  step.positions = at::arange(2048, at::kLong).unsqueeze(0);
  const auto [q_out, k_out] = module->forward(q, k, step);
  auto ref = run_reference(
      "from feature_references import torchscale_xpos\n"
      "save({'q': torchscale_xpos(inputs['q'][0, :, 0], 512.0, downscale=False),\n"
      "      'k': torchscale_xpos(inputs['k'][0, :, 0], 512.0, downscale=True)}, OUTPUT)",
      {{"q", q}, {"k", k}});
  ASSERT_TRUE(ref.count("q") && ref.count("k"));
  // Angles of up to 2047 radians in float32 carry ~2e-4 of rounding, whichever way the inverse
  // frequencies were rounded; centring wrongly would be off by factors of up to 12.
  EXPECT_TRUE(close(q_out[0].select(1, 0), ref["q"], 1e-3, 1e-4));
  EXPECT_TRUE(close(k_out[0].select(1, 0), ref["k"], 1e-3, 1e-4));
  // The factors stay within s_0^(+-1024 / 512) = (0.4 / 1.4)^(+-2): 12.25 at most, where an
  // exponent counted from position 0 reaches (1.4 / 0.4)^4 = 150.
  const double largest = at::cat({q_out.abs(), k_out.abs()}).max().item<double>();
  EXPECT_LT(largest, 12.25 * std::sqrt(2.0) + 1e-3);
  EXPECT_GT(largest, 8.0);
}

}  // namespace
}  // namespace blocks::testing
