// Every block type builds, runs forward with the right shape and backward with finite
// gradients, in each dtype and on each device available (STYLE habit 12).
#include <torch/cuda.h>

#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

struct Piece {
  const char* name;
  const char* mixer;
  const char* mlp;
  const char* normalization;
};

const Piece kPieces[] = {
    {"attention_gated_rms", "{type: attention, heads: 4, head_groups: 2, rotary: {type: default}}",
     "{type: gated, intermediate_size: 96}", "{type: rms_norm}"},
    {"attention_mlp_layer", "{type: attention, rotary: {type: none}, heads: 4, window_size: 3, qk_norm: {type: rms_norm}}",
     "{type: mlp, intermediate_size: 96}", "{type: layer_norm}"},
    {"attention_moe", "{type: attention, heads: 4, rotary: {type: xpos}}",
     "{type: moe, experts: 4, top_k: 2, intermediate_size: 32, shared_experts: 1}",
     "{type: rms_norm}"},
    {"attention_yarn_offset_rms",
     "{type: attention, heads: 4, rotary: {type: yarn, scale_factor: 4, original_context_length: "
     "64}}",
     "{type: gated, intermediate_size: 96, activation: gelu_tanh}",
     "{type: rms_norm, weight_offset: 1}"},
    {"mamba_gated", "{type: mamba, state_size: 8}", "{type: gated, intermediate_size: 96}",
     "{type: rms_norm}"},
    {"attention_llama3_unnormalized", "{type: attention, heads: 4, rotary: {type: llama3}}",
     "{type: mlp, intermediate_size: 96}", "{type: none}"},
};

struct Case {
  Piece piece;
  at::ScalarType dtype;
  c10::DeviceType device;
};

std::string name_of(const Case& c) {
  return std::string(c.piece.name) + "_" + c10::toString(c.dtype) + "_" +
         (c.device == at::kCUDA ? "cuda" : "cpu");
}
std::string test_name(const ::testing::TestParamInfo<Case>& info) { return name_of(info.param); }
void PrintTo(const Case& c, std::ostream* os) { *os << name_of(c); }

std::vector<Case> cases() {
  std::vector<Case> out;
  // CUDA cases are always listed, and skip (visibly) on a machine without a GPU.
  for (const auto& piece : kPieces)
    for (auto dtype : {at::kFloat, at::kBFloat16, at::kDouble})
      for (auto device : {at::kCPU, at::kCUDA}) out.push_back({piece, dtype, device});
  return out;
}

class Smoke : public ::testing::TestWithParam<Case> {};

TEST_P(Smoke, ForwardShapeAndBackward) {
  const Case& c = GetParam();
  if (c.device == at::kCUDA && !torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ModelText text;
  text.mixer = c.piece.mixer;
  text.mlp = c.piece.mlp;
  text.normalization = c.piece.normalization;
  const config::Document doc = document(text.text());
  const auto options = at::TensorOptions().dtype(c.dtype).device(c.device);
  Model model = build_model(*doc.model, options);
  nn::initialize(model.parameters, 1);
  const at::Tensor ids =
      at::randint(0, 100, {2, 7}, at::make_generator<at::CPUGeneratorImpl>(5),
                  at::TensorOptions().dtype(at::kLong))
          .to(c.device);
  if (c.dtype != at::kFloat) {  // in eval mode: no dropout or router jitter
    // Weights from one seed are float32's rounded: a run in another dtype must be the float32
    // run at that dtype's precision (a norm that stopped computing in float32, a softmax in
    // bfloat16, would show here), not merely finite.
    at::NoGradGuard no_grad;
    Model reference = build_model(*doc.model, at::TensorOptions().device(c.device));
    nn::initialize(reference.parameters, 1);
    reference.module->eval();
    model.module->eval();
    const at::Tensor expected = reference.module->forward(ids).logits.detach();
    const at::Tensor got = model.module->forward(ids).logits.detach();
    const double tolerance = c.dtype == at::kBFloat16 ? 0.05 : 1e-5;
    EXPECT_LT((got.to(at::kFloat) - expected).abs().max().item<double>(),
              tolerance * std::max(1.0, expected.abs().max().item<double>()));
  }
  model.module->train();
  const ModelOutput out = model.module->forward(ids);
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 7, 100}));
  EXPECT_EQ(out.logits.scalar_type(), c.dtype);
  EXPECT_EQ(out.logits.device().type(), c.device);
  const at::Tensor loss =
      at::cross_entropy_loss(out.logits.reshape({-1, 100}).to(at::kFloat), ids.reshape({-1})) +
      out.aux_loss;
  loss.backward();
  for (const auto& p : model.parameters) {
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    EXPECT_TRUE(p.tensor.grad().isfinite().all().item<bool>()) << p.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Blocks, Smoke, ::testing::ValuesIn(cases()), test_name);

// The pieces above are a hand list: every registered type of the kinds a block holds must be in
// one of them, so a new type cannot go without its smoke test.
TEST(Smoke, EveryRegisteredTypeOfABlockIsInAPiece) {
  std::string all;
  for (const auto& piece : kPieces)
    all += std::string(piece.mixer) + piece.mlp + piece.normalization;
  for (const char* kind : {"mixer", "mlp", "normalization", "rotary"})
    for (const auto* type : registry().types_of(kind)) {
      // `rotary: {type: none}` is what attention without positions says; `none` norms are above.
      if (std::string_view(kind) == "rotary" && type->name == "none") continue;
      // Cross-attention needs a memory, which a model of tokens alone lacks: deep_fusion_test
      // checks it against its reference instead.
      if (type->name == "cross_attention") continue;
      const std::string written = "type: " + type->name;
      EXPECT_TRUE(all.find(written + ",") != std::string::npos ||
                  all.find(written + "}") != std::string::npos)
          << kind << " type `" << type->name << "` has no smoke piece";
    }
}

}  // namespace
}  // namespace blocks::testing
