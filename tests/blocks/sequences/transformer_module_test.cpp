// The transformer block against a plain-PyTorch reference for each normalization placement
// (pre: GPT-2/Llama; post: the original Transformer; sub: Sub-LN as torchscale's Magneto
// decoder), residual scales (DeepNet), both norms and each MLP type and activation; and the
// sequences' layer order, nesting and per-layer overrides.
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

const char* kReference = R"(
import torch.nn.functional as F
p = inputs
x = p['x']
def norm(name, t, place=None):
    pre = name + ('.%d.' % place if place is not None else '.')
    w = p[pre + 'weight']
    if kind == 'layer_norm':
        return F.layer_norm(t, (t.shape[-1],), w, p.get(pre + 'bias'), 1e-5)
    return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-5))
def act(t):
    return {'gelu': F.gelu, 'relu': F.relu, 'silu': F.silu,
            'gelu_tanh': lambda u: F.gelu(u, approximate='tanh'),
            'squared_relu': lambda u: F.relu(u) ** 2}[activation](t)
def mixer(t):
    B, T, D = t.shape
    H = 4
    q, k, v = (F.linear(t, p['mixer.%s.weight' % n]).view(B, T, H, D // H).transpose(1, 2) for n in ('query', 'key', 'value'))
    s = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
    s = s.masked_fill(torch.ones(T, T).triu(1).bool(), float('-inf'))
    o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
    if placement == 'sub':
        o = norm('sub_normalization', o, 0)
    return F.linear(o, p['mixer.output.weight'])
def mlp(t):
    if gated:
        h = act(F.linear(t, p['mlp.gate.weight'])) * F.linear(t, p['mlp.up.weight'])
    else:
        h = act(F.linear(t, p['mlp.up.weight']))
    if placement == 'sub':
        h = norm('sub_normalization', h, 1)
    return F.linear(h, p['mlp.down.weight'])
a = residual_scale
if placement == 'post':
    h = norm('normalization', a * x + mixer(x))
    out = norm('mlp_normalization', a * h + mlp(h))
else:
    h = a * x + mixer(norm('normalization', x))
    out = a * h + mlp(norm('mlp_normalization', h))
save({'out': out}, OUTPUT)
)";

struct Variant {
  std::string placement, norm, mlp, activation;
  bool gated;
  double residual_scale;
};

void expect_block_matches(const Variant& v) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  ModelText text;
  text.layers = 1;
  text.normalization = "{type: " + v.norm + "}";
  text.mlp = v.mlp;
  text.block_extra = "      normalization_placement: " + v.placement +
                     "\n      residual_scale: " + std::to_string(v.residual_scale) + "\n";
  Model model = build_text(text.text(), at::kFloat, 9);
  model.module->eval();
  std::map<std::string, at::Tensor> inputs;
  {
    c10::NoGradGuard no_grad;
    for (auto& p : model.parameters) {
      if (p.name.rfind("decoder.0.", 0) != 0) continue;
      // Norm weights away from their init, so a missing or swapped norm shows.
      if (p.name.find("normalization") != std::string::npos) p.tensor.uniform_(0.5, 1.5);
      inputs[p.name.substr(10)] = p.tensor.detach();
    }
  }
  const at::Tensor x = at::randn({2, 6, 64}, at::make_generator<at::CPUGeneratorImpl>(2));
  inputs["x"] = x;
  Step step;
  step.positions = at::arange(6, at::kLong).unsqueeze(0).expand({2, 6});
  const at::Tensor out = find_module<BlockModule>(*model.module, "decoder.0")->forward(x, step);
  const std::string knobs = "placement, kind, activation, gated, residual_scale = '" +
                            v.placement + "', '" + v.norm + "', '" + v.activation + "', " +
                            (v.gated ? "True" : "False") + ", " +
                            std::to_string(v.residual_scale) + "\n";
  auto ref = run_reference(knobs + kReference, inputs);
  ASSERT_TRUE(ref.count("out"));
  EXPECT_TRUE(close(out, ref["out"], 1e-5, 1e-5));
}

TEST(TransformerModule, PreNormRmsSwiGlu) {
  expect_block_matches({"pre", "rms_norm", "{type: gated, intermediate_size: 96}", "silu", true,
                        1.0});
}

TEST(TransformerModule, PostNormLayerNormReluWithResidualScale) {
  expect_block_matches({"post", "layer_norm",
                        "{type: mlp, intermediate_size: 128, activation: relu}", "relu", false,
                        1.7});
}

TEST(TransformerModule, SubLnLayerNormGelu) {
  expect_block_matches({"sub", "layer_norm", "{type: mlp, intermediate_size: 128}", "gelu",
                        false, 1.0});
}

TEST(TransformerModule, SubLnGatedSquaredRelu) {
  expect_block_matches({"sub", "rms_norm",
                        "{type: gated, intermediate_size: 96, activation: squared_relu}",
                        "squared_relu", true, 1.0});
}

TEST(TransformerModule, GeluTanh) {
  expect_block_matches({"pre", "layer_norm",
                        "{type: mlp, intermediate_size: 128, activation: gelu_tanh}", "gelu_tanh",
                        false, 1.0});
}

// A repeat of a fixed pair of blocks: layers run in order, named by position at each level.
TEST(SequenceModule, NestedSequencesRunInOrder) {
  const std::string block =
      "{type: transformer, mixer: {type: attention, rotary: {type: none}, heads: 4}, mlp: {type: gated, "
      "intermediate_size: 32}, normalization: {type: rms_norm}}";
  const std::string yaml =
      "version: 1\nmodel:\n  type: language_model\n  hidden_size: 64\n"
      "  embeddings: {vocab_size: 100}\n  decoder:\n    type: repeat\n    num_layers: 2\n"
      "    block:\n      type: fixed\n      blocks:\n        - " + block + "\n        - " + block +
      "\n  head:\n    normalization: {type: rms_norm}\n";
  Model model = build_text(yaml);
  model.module->eval();
  const at::Tensor x = at::randn({1, 5, 64}, at::make_generator<at::CPUGeneratorImpl>(6));
  Step step;
  step.positions = at::arange(5, at::kLong).unsqueeze(0);
  at::Tensor by_hand = x;
  for (const char* name : {"decoder.0.0", "decoder.0.1", "decoder.1.0", "decoder.1.1"})
    by_hand = find_module<BlockModule>(*model.module, name)->forward(by_hand, step);
  EXPECT_TRUE(close(language_model(model).decoder->forward(x, step), by_hand, 1e-6, 1e-7));
  EXPECT_EQ(model.parameters.size(), 4 * 9 + 3u);
}

TEST(SequenceModule, OverridesChangeOnlyTheirLayer) {
  ModelText text;
  text.layers = 3;
  const std::string yaml = text.text();
  const std::string with_override = replace(
      yaml, "    num_layers: 3\n",
      "    num_layers: 3\n    overrides:\n      1: {mlp: {intermediate_size: 32}}\n");
  Model model = build_text(with_override);
  auto shape_of = [&](const std::string& name) {
    for (const auto& p : model.parameters)
      if (p.name == name) return p.shape;
    return std::vector<int64_t>{};
  };
  EXPECT_EQ(shape_of("decoder.0.mlp.up.weight"), (std::vector<int64_t>{128, 64}));
  EXPECT_EQ(shape_of("decoder.1.mlp.up.weight"), (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(shape_of("decoder.2.mlp.up.weight"), (std::vector<int64_t>{128, 64}));
  for (const auto& p : model.parameters)
    if (p.name.rfind("decoder.1.", 0) == 0)
      EXPECT_EQ(p.config_path.rfind("model.decoder.overrides.1", 0), 0u) << p.config_path;
}

// Parameters of the mamba mixer (mamba_simple.py's Mamba) with hidden h, inner e, state n,
// dt rank r and kernel k: in_proj, conv1d with bias, x_proj, dt_proj with bias, A_log, D,
// out_proj.
int64_t mamba_parameters(int64_t h, int64_t e, int64_t n, int64_t r, int64_t k) {
  return h * 2 * e + (e * k + e) + e * (r + 2 * n) + (r * e + e) + e * n + e + e * h;
}

void expect_backward_reaches_every_parameter(Model& model, int64_t batch, int64_t tokens) {
  model.module->train();
  const at::Tensor ids =
      at::randint(0, 100, {batch, tokens}, at::make_generator<at::CPUGeneratorImpl>(3),
                  at::TensorOptions().dtype(at::kLong));
  const at::Tensor logits = model.module->forward(ids).logits;
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{batch, tokens, 100}));
  at::cross_entropy_loss(logits.reshape({-1, 100}), ids.reshape({-1})).backward();
  for (const auto& p : model.parameters) {
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    EXPECT_TRUE(p.tensor.grad().isfinite().all().item<bool>()) << p.name;
    EXPECT_GT(p.tensor.grad().abs().sum().item<double>(), 0) << p.name;
  }
}

int64_t numel_below(const Model& model, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& p : model.parameters)
    if (p.name.rfind(prefix, 0) == 0) n += p.numel();
  return n;
}

// A pure Mamba-1 stack (state-spaces/mamba's MambaLMHeadModel: each layer a norm and a mixer,
// no MLP): the block has no MLP and no second norm, and computes x + mixer(norm(x)).
TEST(TransformerModule, PureMambaStackHasNoMlp) {
  ModelText text;
  text.hidden_size = 32;
  text.layers = 3;
  text.mixer = "{type: mamba, state_size: 8, dt_rank: 4}";
  text.mlp = "";
  Model model = build_text(text.text());
  std::vector<std::string> names;
  for (const auto& p : model.parameters)
    if (p.name.rfind("decoder.1.", 0) == 0 && p.name.find(".mixer.") == std::string::npos)
      names.push_back(p.name);
  EXPECT_EQ(names, std::vector<std::string>{"decoder.1.normalization.weight"});
  const int64_t layer = mamba_parameters(32, 64, 8, 4, 4) + 32;  // and the block's RMSNorm
  EXPECT_EQ(numel_below(model, "decoder."), 3 * layer);
  const config::Document doc = document(text.text());
  EXPECT_EQ(config::count_parameters(*doc.model).total, numel_below(model, ""));

  model.module->eval();
  const at::Tensor x = at::randn({2, 5, 32}, at::make_generator<at::CPUGeneratorImpl>(4));
  Step step;
  step.positions = at::arange(5, at::kLong).unsqueeze(0).expand({2, 5});
  auto block = find_module<BlockModule>(*model.module, "decoder.0");
  auto mixer = find_module<MixerModule>(*model.module, "decoder.0.mixer");
  auto norm = find_module<NormModule>(*model.module, "decoder.0.normalization");
  Step by_hand_step = step;
  const at::Tensor by_hand = x + mixer->forward(norm->forward(x), by_hand_step);
  EXPECT_TRUE(close(block->forward(x, step), by_hand, 1e-6, 1e-6));
  expect_backward_reaches_every_parameter(model, 2, 6);
}

// Nemotron-H's layout (transformers' modeling_nemotron_h.py: each layer one of a Mamba mixer
// "M", attention "*" or an MLP "-", with one norm): mamba-only, attention-only and MLP-only
// blocks in one pattern.
TEST(TransformerModule, NemotronHStylePatternOfOneBranchBlocks) {
  const std::string yaml =
      "version: 1\nmodel:\n  type: language_model\n  hidden_size: 32\n"
      "  embeddings: {vocab_size: 100}\n  decoder:\n    type: pattern\n    pattern: M-M*-\n"
      "    blocks:\n"
      "      M: {type: transformer, mixer: {type: mamba, state_size: 8, dt_rank: 4}, "
      "normalization: {type: rms_norm}}\n"
      "      '*': {type: transformer, mixer: {type: attention, heads: 4, rotary: {type: none}}, "
      "normalization: {type: rms_norm}}\n"
      "      '-': {type: transformer, mlp: {type: mlp, intermediate_size: 48, activation: "
      "squared_relu}, normalization: {type: rms_norm}}\n"
      "  head:\n    normalization: {type: rms_norm}\n";
  Model model = build_text(yaml);
  const int64_t h = 32, norm = h;
  const int64_t mamba = mamba_parameters(h, 2 * h, 8, 4, 4) + norm;
  const int64_t attention = 4 * h * h + norm;
  const int64_t mlp = 2 * h * 48 + norm;
  EXPECT_EQ(numel_below(model, "decoder.0."), mamba);
  EXPECT_EQ(numel_below(model, "decoder.1."), mlp);
  EXPECT_EQ(numel_below(model, "decoder.3."), attention);
  EXPECT_EQ(numel_below(model, "decoder."), 2 * mamba + attention + 2 * mlp);
  for (const auto& p : model.parameters) {
    if (p.name.rfind("decoder.1.", 0) != 0) continue;
    EXPECT_TRUE(p.name.rfind("decoder.1.mlp.", 0) == 0 ||
                p.name == "decoder.1.normalization.weight")
        << p.name;
  }

  // The MLP-only block is x + mlp(norm(x)).
  model.module->eval();
  const at::Tensor x = at::randn({1, 4, h}, at::make_generator<at::CPUGeneratorImpl>(5));
  Step step;
  step.positions = at::arange(4, at::kLong).unsqueeze(0);
  auto mlp_module = find_module<MlpModule>(*model.module, "decoder.1.mlp");
  auto mlp_norm = find_module<NormModule>(*model.module, "decoder.1.normalization");
  Step by_hand_step = step;
  const at::Tensor by_hand = x + mlp_module->forward(mlp_norm->forward(x), by_hand_step);
  EXPECT_TRUE(close(find_module<BlockModule>(*model.module, "decoder.1")->forward(x, step),
                    by_hand, 1e-6, 1e-6));
  expect_backward_reaches_every_parameter(model, 2, 6);
}

}  // namespace
}  // namespace blocks::testing
