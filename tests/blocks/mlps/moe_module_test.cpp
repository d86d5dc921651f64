// Tests of the `moe` module (blocks/mlps/moe_module.cpp): outputs and auxiliary losses against a
// dense Python reference that runs every expert on every token, parameters, empty experts,
// gradients, input checks and the language model's sum of auxiliary losses.
#include <c10/core/GradMode.h>

#include <cmath>
#include <string>
#include <vector>

#include "framework/config/parameters.h"
#include "tests/support/torch_support.h"

namespace {

using blocks::BlockModule;
using blocks::Linear;
using blocks::MlpModule;
using blocks::Step;
using blocks::testing::build_text;
using blocks::testing::close;
using blocks::testing::find_module;

constexpr int kHidden = 32;

// One MoE layer's settings: they write both the YAML and the reference's constants.
struct MoeCase {
  std::string name;
  int experts = 4, top_k = 2, shared = 0;
  bool gated = true, normalize = true;
  std::string activation = "silu";
  double aux = 0.01, z = 0.001;
  std::string model_extra;  // model lines (biases, PEFT)

  std::string yaml() const {
    std::string text =
        "{type: moe, experts: " + std::to_string(experts) + ", top_k: " + std::to_string(top_k) +
        ", intermediate_size: 48" + ", gated: " + (gated ? "true" : "false") +
        ", normalize_top_k: " + (normalize ? "true" : "false") + ", activation: " + activation +
        ", aux_loss_coefficient: " + std::to_string(aux) +
        ", z_loss_coefficient: " + std::to_string(z);
    if (shared > 0)
      text += ", shared_experts: " + std::to_string(shared) + ", shared_intermediate_size: 24";
    return text + "}";
  }
  std::string model(int layers = 1) const {
    blocks::testing::ModelText m;
    m.hidden_size = kHidden;
    m.layers = layers;
    m.mlp = yaml();
    m.model_extra = model_extra;
    return m.text();
  }
  std::string python() const {
    auto flag = [](bool b) { return b ? "True" : "False"; };
    return "E = " + std::to_string(experts) + "\nTOP_K = " + std::to_string(top_k) +
           "\nGATED = " + flag(gated) + "\nNORMALIZE = " + flag(normalize) +
           "\nSHARED = " + flag(shared > 0) + "\nACT = '" + activation +
           "'\nAUX = " + std::to_string(aux) + "\nZ = " + std::to_string(z) + "\n";
  }
};

// The reference: every expert runs on every token ([E, N, H]) and a dense [N, E] matrix of
// top-k weights (zero elsewhere) combines them; no sorting, gathering or index_add.
const char* const kReference = R"(
P = inputs
x = P['x']
B, T, H = x.shape
t = x.reshape(-1, H)
N = t.shape[0]
act = {'silu': torch.nn.functional.silu, 'gelu': torch.nn.functional.gelu,
       'relu': torch.relu}[ACT]

def project(name, h):
    # h [N, in] with weight [out, in], or [E, N, in] with stacked weights [E, out, in]
    y = h @ P[name + '.weight'].transpose(-1, -2)
    if name + '.bias' in P:
        y = y + P[name + '.bias'].unsqueeze(-2)
    if name + '.lora_a' in P:
        r = h @ P[name + '.lora_a'].transpose(-1, -2)
        y = y + (r @ P[name + '.lora_b'].transpose(-1, -2)) * P['lora_scale'].item()
    return y

def mlp(prefix, h):
    if GATED:
        return project(prefix + 'down', act(project(prefix + 'gate', h)) * project(prefix + 'up', h))
    return project(prefix + 'down', act(project(prefix + 'up', h)))

logits = project('router', t)
probs = torch.softmax(logits.float(), -1)
weights, chosen = probs.topk(TOP_K, -1)
if NORMALIZE:
    weights = weights / weights.sum(-1, keepdim=True)
dense = torch.zeros_like(probs).scatter(1, chosen, weights)
every = mlp('', t.unsqueeze(0).expand(E, N, H))
out = torch.einsum('ne,enh->nh', dense, every)
if SHARED:
    out = out + mlp('shared_', t)
routed = torch.nn.functional.one_hot(chosen, E).sum((0, 1)).float()
aux = AUX * E * ((routed / (N * TOP_K)) * probs.mean(0)).sum()
z = Z * torch.logsumexp(logits.float(), -1).pow(2).mean()
save({'out': out.reshape(B, T, H), 'aux': aux.reshape(1), 'z': z.reshape(1)}, OUTPUT)
)";

// normal(0, 1 / sqrt(last dim)) everywhere, so outputs are O(1) (the 1e-5 relative comparison
// means something) and routing differs between tokens. LoRA B, zero at init, becomes nonzero.
void randomize(torch::nn::Module& module, uint64_t seed) {
  c10::NoGradGuard no_grad;
  at::manual_seed(seed);
  for (auto& p : module.parameters())
    p.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(p.size(-1))));
}

// The module's parameters by local name, the input and the LoRA scale, for the reference.
std::map<std::string, at::Tensor> reference_inputs(MlpModule& mlp, const at::Tensor& x) {
  std::map<std::string, at::Tensor> inputs;
  for (const auto& item : mlp.named_parameters()) inputs[item.key()] = item.value().detach();
  inputs["x"] = x;
  inputs["lora_scale"] = at::full({1}, find_module<Linear>(mlp, "up")->lora_scale, at::kFloat);
  return inputs;
}

void PrintTo(const MoeCase& c, std::ostream* os) { *os << c.name << ": " << c.yaml(); }

class MoeReference : public ::testing::TestWithParam<MoeCase> {};

TEST_P(MoeReference, OutputAndLossesMatchDenseReference) {
  const MoeCase& c = GetParam();
  auto model = build_text(c.model());
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  randomize(*mlp, 1);
  mlp->eval();  // the losses come in evaluation too
  at::manual_seed(2);
  const at::Tensor x = at::randn({2, 5, kHidden});
  Step step;
  const at::Tensor out = mlp->forward(x, step);
  ASSERT_EQ(step.aux_losses.size(), 2u);
  if (!blocks::testing::have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  auto ref = blocks::testing::run_reference(c.python() + kReference, reference_inputs(*mlp, x));
  ASSERT_EQ(ref.count("out"), 1u);
  EXPECT_TRUE(close(out, ref["out"], 1e-5, 1e-6));
  EXPECT_TRUE(close(step.aux_losses[0].reshape({1}), ref["aux"], 1e-5, 0));
  EXPECT_TRUE(close(step.aux_losses[1].reshape({1}), ref["z"], 1e-5, 0));
}

MoeCase named(std::string name, MoeCase c) {
  c.name = std::move(name);
  return c;
}

std::vector<MoeCase> reference_cases() {
  MoeCase plain;
  plain.gated = false;
  plain.normalize = false;
  plain.activation = "relu";
  MoeCase shared_top1;
  shared_top1.top_k = 1;
  shared_top1.shared = 2;
  MoeCase plain_shared_top1 = plain;
  plain_shared_top1.top_k = 1;
  plain_shared_top1.shared = 1;
  plain_shared_top1.normalize = true;
  MoeCase unnormalized;
  unnormalized.normalize = false;
  unnormalized.experts = 6;
  unnormalized.top_k = 3;
  MoeCase biases;
  biases.shared = 1;
  biases.model_extra = "  add_linear_biases: true\n";
  MoeCase lora;
  lora.shared = 1;
  lora.activation = "gelu";
  lora.model_extra = "  peft: {type: lora, rank: 4, alpha: 8, targets: [mlp]}\n";
  return {named("GatedNormalizedTop2", {}),
          named("PlainUnnormalizedTop2", plain),
          named("GatedSharedTop1", shared_top1),
          named("PlainSharedTop1", plain_shared_top1),
          named("GatedUnnormalizedTop3", unnormalized),
          named("Biases", biases),
          named("LoraOnEveryLinear", lora)};
}

INSTANTIATE_TEST_SUITE_P(Moe, MoeReference, ::testing::ValuesIn(reference_cases()),
                         [](const auto& info) { return info.param.name; });

// name -> shape of the parameters under decoder.0.mlp.
std::map<std::string, std::vector<int64_t>> mlp_parameters(const blocks::Model& model) {
  const std::string prefix = "decoder.0.mlp.";
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : model.parameters)
    if (p.name.rfind(prefix, 0) == 0) out[p.name.substr(prefix.size())] = p.shape;
  return out;
}

int64_t total(const blocks::Model& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters) n += p.numel();
  return n;
}

TEST(MoeModule, ParametersAreStackedPerExpertAndCountAsTheConfigSays) {
  MoeCase gated;
  gated.shared = 2;  // shared width 2 * 24 = 48
  const std::map<std::string, std::vector<int64_t>> gated_shapes = {
      {"router.weight", {4, 32}},       {"gate.weight", {4, 48, 32}},
      {"up.weight", {4, 48, 32}},       {"down.weight", {4, 32, 48}},
      {"shared_gate.weight", {48, 32}}, {"shared_up.weight", {48, 32}},
      {"shared_down.weight", {32, 48}}};
  MoeCase plain;
  plain.gated = false;
  const std::map<std::string, std::vector<int64_t>> plain_shapes = {
      {"router.weight", {4, 32}}, {"up.weight", {4, 48, 32}}, {"down.weight", {4, 32, 48}}};
  for (const auto& [c, shapes] : {std::pair{gated, gated_shapes}, std::pair{plain, plain_shapes}}) {
    const auto doc = blocks::testing::document(c.model());
    const auto model = build_text(c.model());
    EXPECT_EQ(mlp_parameters(model), shapes) << c.yaml();
    EXPECT_EQ(total(model), blocks::config::count_parameters(*doc.model).total) << c.yaml();
  }
}

TEST(MoeModule, LoraAdaptersOfExpertsAreStacked) {
  MoeCase c;
  c.shared = 1;
  c.model_extra = "  peft: {type: lora, rank: 4, targets: [mlp]}\n";  // as in LoraOnEveryLinear
  const auto shapes = mlp_parameters(build_text(c.model()));
  EXPECT_EQ(shapes.at("router.lora_a"), (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(shapes.at("gate.lora_a"), (std::vector<int64_t>{4, 4, 32}));
  EXPECT_EQ(shapes.at("up.lora_b"), (std::vector<int64_t>{4, 48, 4}));
  EXPECT_EQ(shapes.at("down.lora_a"), (std::vector<int64_t>{4, 4, 48}));
  EXPECT_EQ(shapes.at("shared_down.lora_b"), (std::vector<int64_t>{32, 4}));
  c.model_extra = "  peft: {type: lora, rank: 4, targets: [up]}\n";
  const auto only_up = mlp_parameters(build_text(c.model()));
  EXPECT_EQ(only_up.count("up.lora_a"), 1u);
  EXPECT_EQ(only_up.count("gate.lora_a"), 0u);
}

TEST(MoeModule, ExpertsWithoutTokensGetNoGradientAndOutputsStillMatch) {
  MoeCase c;
  auto model = build_text(c.model());
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  randomize(*mlp, 3);
  auto router = find_module<Linear>(*mlp, "router");
  {
    c10::NoGradGuard no_grad;
    router->weight[3].fill_(-10.0);  // positive inputs give expert 3 the lowest logit
  }
  at::manual_seed(4);
  const at::Tensor x = at::rand({2, 5, kHidden}) + 0.1;
  Step step;
  const at::Tensor out = mlp->forward(x, step);
  out.sum().backward();
  const at::Tensor grad = find_module<Linear>(*mlp, "gate")->weight.grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_EQ(grad[3].abs().sum().item<double>(), 0.0);
  EXPECT_GT(grad.narrow(0, 0, 3).abs().sum().item<double>(), 0.0);
  if (!blocks::testing::have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  auto ref = blocks::testing::run_reference(c.python() + kReference, reference_inputs(*mlp, x));
  ASSERT_EQ(ref.count("out"), 1u);
  EXPECT_TRUE(close(out, ref["out"], 1e-5, 1e-6));
}

TEST(MoeModule, OneTokenWithTopOneLeavesOtherExpertsEmpty) {
  MoeCase c;
  c.top_k = 1;
  auto model = build_text(c.model());
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  randomize(*mlp, 5);
  at::manual_seed(6);
  const at::Tensor x = at::randn({1, 1, kHidden});
  Step step;
  const at::Tensor out = mlp->forward(x, step);
  EXPECT_EQ(out.sizes(), x.sizes());
  if (!blocks::testing::have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  auto ref = blocks::testing::run_reference(c.python() + kReference, reference_inputs(*mlp, x));
  ASSERT_EQ(ref.count("out"), 1u);
  EXPECT_TRUE(close(out, ref["out"], 1e-5, 1e-6));
  EXPECT_TRUE(close(step.aux_losses[0].reshape({1}), ref["aux"], 1e-5, 0));
}

TEST(MoeModule, EveryParameterGetsAFiniteGradient) {
  MoeCase c;
  c.shared = 1;
  c.model_extra = "  add_linear_biases: true\n";
  auto model = build_text(c.model());
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  randomize(*mlp, 7);
  at::manual_seed(8);
  const at::Tensor x = at::randn({4, 16, kHidden});
  Step step;
  at::Tensor loss = mlp->forward(x, step).square().mean();
  for (const auto& aux : step.aux_losses) loss = loss + aux;
  loss.backward();
  const auto parameters = mlp->named_parameters();
  EXPECT_EQ(parameters.size(), 13u);  // router weight (no bias); weights and biases of 3 + 3
  for (const auto& item : parameters) {
    const at::Tensor grad = item.value().grad();
    ASSERT_TRUE(grad.defined()) << item.key();
    EXPECT_TRUE(grad.isfinite().all().item<bool>()) << item.key();
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << item.key();
  }
}

TEST(MoeModule, RouterLearnsFromTheBalanceLossAlone) {
  MoeCase c;
  auto model = build_text(c.model());
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  randomize(*mlp, 9);
  Step step;
  mlp->forward(at::randn({2, 5, kHidden}), step);
  ASSERT_EQ(step.aux_losses.size(), 2u);
  step.aux_losses[0].backward();
  const at::Tensor grad = find_module<Linear>(*mlp, "router")->weight.grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
}

TEST(MoeModule, ZeroCoefficientsAddNoLosses) {
  MoeCase c;
  c.aux = 0;
  c.z = 0;
  auto model = build_text(c.model());
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  Step step;
  mlp->forward(at::randn({1, 3, kHidden}), step);
  EXPECT_TRUE(step.aux_losses.empty());
}

TEST(MoeModule, JitterPerturbsRoutingInTrainingOnly) {
  MoeCase c;
  auto model =
      build_text(blocks::testing::replace(c.model(), "type: moe,", "type: moe, jitter: 0.5,"));
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  randomize(*mlp, 10);
  const at::Tensor x = at::randn({2, 5, kHidden});
  Step step;
  mlp->eval();
  const at::Tensor first = mlp->forward(x, step), second = mlp->forward(x, step);
  EXPECT_TRUE(close(first, second, 0, 0));
  mlp->train();
  EXPECT_FALSE(close(mlp->forward(x, step), first));
}

// bfloat16 weights are float32's rounded (one seed): the bfloat16 run must be the float32 run
// at bfloat16's precision, with losses in float32, not merely finite.
TEST(MoeModule, RunsInBfloat16WithFloatLosses) {
  auto model = build_text(MoeCase{}.model(), at::kBFloat16, 4);
  auto reference = build_text(MoeCase{}.model(), at::kFloat, 4);
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  auto mlp32 = find_module<MlpModule>(*reference.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp && mlp32);
  const at::Tensor x = at::randn({2, 5, kHidden}, at::make_generator<at::CPUGeneratorImpl>(8))
                           .to(at::kBFloat16);
  Step step, step32;
  const at::Tensor out = mlp->forward(x, step);
  const at::Tensor out32 = mlp32->forward(x.to(at::kFloat), step32);
  EXPECT_EQ(out.scalar_type(), at::kBFloat16);
  const double scale = out32.abs().max().item<double>();
  EXPECT_LT((out.to(at::kFloat) - out32).abs().max().item<double>(), 0.03 * scale);
  ASSERT_EQ(step.aux_losses.size(), 2u);
  ASSERT_EQ(step32.aux_losses.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(step.aux_losses[i].scalar_type(), at::kFloat);
    EXPECT_NEAR(step.aux_losses[i].item<double>(), step32.aux_losses[i].item<double>(),
                0.03 * std::abs(step32.aux_losses[i].item<double>()));
  }
}

TEST(MoeModule, NoTokensGiveAnEmptyOutputAndNoLosses) {
  auto model = build_text(MoeCase{}.model());
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  Step step;
  const at::Tensor out = mlp->forward(at::zeros({2, 0, kHidden}), step);
  EXPECT_EQ(out.sizes(), (at::IntArrayRef{2, 0, kHidden}));
  EXPECT_TRUE(step.aux_losses.empty());
}

TEST(MoeModule, InputsMustBeBatchTokensHidden) {
  auto model = build_text(MoeCase{}.model());
  auto mlp = find_module<MlpModule>(*model.module, "decoder.0.mlp");
  ASSERT_TRUE(mlp);
  Step step;
  for (const auto& [shape, text] :
       {std::pair{std::vector<int64_t>{2, 5, 31}, std::string("[2, 5, 31]")},
        std::pair{std::vector<int64_t>{5, 32}, std::string("[5, 32]")}}) {
    try {
      mlp->forward(at::zeros(shape), step);
      ADD_FAILURE() << "no error for " << text;
    } catch (const blocks::InputError& e) {
      EXPECT_EQ(std::string(e.what()),
                "model.decoder.block.mlp: expected inputs [batch, tokens, 32], got shape " + text);
    }
  }
}

TEST(MoeModule, LanguageModelSumsTheAuxLossesOfEveryLayer) {
  MoeCase c;
  auto model = build_text(c.model(/*layers=*/2));
  for (const char* name : {"decoder.0.mlp", "decoder.1.mlp"})
    randomize(*find_module<MlpModule>(*model.module, name), 11);
  const at::Tensor tokens = at::randint(0, 100, {2, 6});
  const blocks::ModelOutput output = model.module->forward(tokens);
  // The same layers run one by one, each with a Step of its own.
  const at::Tensor positions = at::arange(6).unsqueeze(0).expand({2, 6});
  at::Tensor h = blocks::testing::language_model(model).embeddings->forward(tokens, {}, positions);
  std::vector<at::Tensor> per_layer;
  for (const char* name : {"decoder.0", "decoder.1"}) {
    Step step;
    step.positions = positions;
    auto block = find_module<BlockModule>(*model.module, name);
    ASSERT_TRUE(block);
    h = block->forward(h, step);
    ASSERT_EQ(step.aux_losses.size(), 2u) << name;
    per_layer.push_back(step.aux_losses[0] + step.aux_losses[1]);
  }
  EXPECT_FALSE(close(per_layer[0], per_layer[1]));  // two layers, two different losses
  EXPECT_TRUE(close(output.aux_loss, per_layer[0] + per_layer[1], 1e-6, 0));
}

}  // namespace
