// The builder's parameter table (DESIGN principle 4) against the config layer's own count,
// metadata along the config path, optimizer groups, meta-device builds, deterministic init,
// LoRA adapters and pattern sequences with shared blocks.
#include <torch/optim/adamw.h>

#include <cmath>
#include <set>

#include "blocks/mixers/attention.h"
#include "blocks/sequences/repeat.h"
#include "blocks/sequences/transformer.h"
#include "framework/nn/param_groups.h"
#include "tests/support/errors.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

const at::TensorOptions kMeta = at::TensorOptions().device(at::kMeta);

// Every zoo config builds on the meta device with exactly the tensors the config layer counts.
TEST(Builder, MetaBuildMatchesTheConfigCountForEveryZooConfig) {
  for (const char* name : {"gpt2", "llama3-8b", "llama3-70b", "mistral-7b", "mixtral-8x7b",
                           "hybrid-mamba-attention", "per-layer-lr-scales", "lora",
                           "custom-init"}) {
    SCOPED_TRACE(name);
    const config::Document doc = zoo(name);
    const config::ParameterCount expected = config::count_parameters(*doc.model);
    const Model model = build_model(*doc.model, kMeta);
    int64_t total = 0, trainable = 0;
    for (const auto& p : model.parameters) {
      EXPECT_TRUE(p.tensor.device().is_meta()) << p.name;
      total += p.numel();
      if (p.trainable) trainable += p.numel();
    }
    EXPECT_EQ(total, expected.total);
    EXPECT_EQ(trainable, expected.trainable);
    EXPECT_EQ(static_cast<int64_t>(model.parameters.size()), expected.tensors);
  }
}

TEST(Builder, PublishedSizesOnTheMetaDevice) {
  auto total = [](const std::string& name) {
    int64_t n = 0;
    for (const auto& p : build_model(*zoo(name).model, kMeta).parameters) n += p.numel();
    return n;
  };
  EXPECT_EQ(total("llama3-8b"), 8'030'261'248);
  EXPECT_EQ(total("llama3-70b"), 70'553'706'496);
}

const nn::ParameterRecord& record(const Model& model, const std::string& name) {
  for (const auto& p : model.parameters)
    if (p.name == name) return p;
  throw std::runtime_error("no parameter " + name);
}

TEST(Builder, RecordsCarryNamesShapesLrScalesAndOwners) {
  const config::Document doc = zoo("per-layer-lr-scales");
  const Model model = build_model(*doc.model, kMeta);
  const auto& word = record(model, "embeddings.word.weight");
  EXPECT_EQ(word.config_path, "model.embeddings.word");
  EXPECT_EQ(word.declared_name, "weight");
  EXPECT_EQ(word.role, "base");
  EXPECT_EQ(word.initialization->type().name, "normal");
  // Each record's lr scale and trainability are what the config layer resolved for its owner.
  std::map<std::string, config::ParameterShape> declared;
  config::count_parameters(*doc.model, [&](const config::Config& c, const std::string& path,
                                           int64_t) {
    for (const auto& p : c.parameters()) declared[path + "/" + p.name] = p;
  });
  std::set<double> seen;
  for (const auto& p : model.parameters) {
    auto it = declared.find(p.config_path + "/" + p.declared_name);
    ASSERT_NE(it, declared.end()) << p.name << " owned by " << p.config_path;
    EXPECT_EQ(p.lr_scale, it->second.lr_scale) << p.name;
    EXPECT_EQ(p.trainable, it->second.trainable) << p.name;
    EXPECT_EQ(p.shape, it->second.shape) << p.name;
    seen.insert(p.lr_scale);
  }
  EXPECT_GT(seen.size(), 2u) << "the config should exercise several lr scales";
  // The same against products computed by hand from configs/per-layer-lr-scales.yaml (model 1
  // x decoder 0.8 x block 1 x sub-layer x linear; overrides 0 and 1 freeze, 7 doubles the
  // mixer), so a broken product cannot pass by being broken on both sides.
  struct Expected {
    const char* name;
    std::vector<int64_t> shape;
    double lr_scale;
  };
  for (const Expected& e : std::vector<Expected>{
           {"embeddings.word.weight", {32000, 512}, 0.5},
           {"decoder.0.mixer.query.weight", {512, 512}, 0.0},
           {"decoder.1.mlp.down.weight", {512, 1408}, 0.0},
           {"decoder.2.mixer.query.weight", {512, 512}, 0.8},
           {"decoder.2.mixer.output.weight", {512, 512}, 0.4},
           {"decoder.2.mlp.gate.weight", {1408, 512}, 1.0},
           {"decoder.2.mlp.down.weight", {512, 1408}, 0.8},
           {"decoder.2.normalization.weight", {512}, 0.8},
           {"decoder.7.mixer.key.weight", {512, 512}, 1.6},
           {"decoder.7.mixer.output.weight", {512, 512}, 0.8},
           {"decoder.7.mlp.up.weight", {1408, 512}, 1.0},
           {"head.normalization.weight", {512}, 0.1},
           {"head.output.weight", {32000, 512}, 0.1}}) {
    const auto& p = record(model, e.name);
    EXPECT_EQ(p.shape, e.shape) << e.name;
    EXPECT_NEAR(p.lr_scale, e.lr_scale, 1e-12) << e.name;
    EXPECT_EQ(p.trainable, e.lr_scale > 0) << e.name;
  }
}

TEST(Builder, ParamGroupsScaleTheLearningRateAndLeaveFrozenOut) {
  ModelText text;
  text.block_extra = "      lr_scale: 0.5\n";
  std::string yaml = replace(text.text(), "embeddings: {vocab_size: 100}",
                             "embeddings: {vocab_size: 100, lr_scale: 0.0}");
  Model model = build_text(yaml);
  auto groups = param_groups(model.parameters, torch::optim::AdamWOptions(1e-3));
  ASSERT_EQ(groups.size(), 2u);
  std::map<double, size_t> sizes;
  for (auto& g : groups)
    sizes[static_cast<torch::optim::AdamWOptions&>(g.options()).lr()] = g.params().size();
  // The head's norm and output matrix at lr 1e-3; the decoder's 2 x 9 tensors at 5e-4; the
  // embeddings are frozen.
  EXPECT_EQ(sizes, (std::map<double, size_t>{{5e-4, 18}, {1e-3, 2}}));
  EXPECT_FALSE(record(model, "embeddings.word.weight").tensor.requires_grad());
  torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(1e-3));
  EXPECT_EQ(optimizer.param_groups().size(), 2u);
}

TEST(Builder, InitializationIsDeterministicPerSeedAndName) {
  ModelText text;
  Model a = build_text(text.text(), at::kFloat, 11);
  Model b = build_text(text.text(), at::kFloat, 11);
  Model c = build_text(text.text(), at::kFloat, 12);
  for (size_t i = 0; i < a.parameters.size(); ++i) {
    EXPECT_TRUE(at::equal(a.parameters[i].tensor, b.parameters[i].tensor))
        << a.parameters[i].name;
    if (a.parameters[i].initialization->type().name == "normal")
      EXPECT_FALSE(at::equal(a.parameters[i].tensor, c.parameters[i].tensor));
  }
  // Two layers built from one config draw different values (names seed the streams).
  EXPECT_FALSE(at::equal(record(a, "decoder.0.mixer.query.weight").tensor,
                         record(a, "decoder.1.mixer.query.weight").tensor));
  // A model with more layers keeps the values of the layers both have.
  text.layers = 3;
  Model d = build_text(text.text(), at::kFloat, 11);
  EXPECT_TRUE(at::equal(record(a, "decoder.1.mlp.up.weight").tensor,
                        record(d, "decoder.1.mlp.up.weight").tensor));
}

// Statistics of each initialization against torch.nn.init's formulas, on 256 x 1024 tensors.
TEST(Builder, InitializationsFollowTheirFormulas) {
  const std::string yaml = replace(
      ModelText{}.text(), "mlp: {type: gated, intermediate_size: 128}",
      "mlp: {type: gated, intermediate_size: 1024, gate: {weight_initialization: {type: kaiming, "
      "nonlinearity: relu}}, up: {weight_initialization: {type: xavier, distribution: uniform}}, "
      "down: {weight_initialization: {type: normal, std: 0.05, truncation: 2.0}}}");
  Model model = build_text(yaml);
  const at::Tensor gate = record(model, "decoder.0.mlp.gate.weight").tensor;  // [1024, 64]
  EXPECT_NEAR(gate.std().item<double>(), std::sqrt(2.0 / 64), 0.01);
  const at::Tensor up = record(model, "decoder.0.mlp.up.weight").tensor;
  const double bound = std::sqrt(6.0 / (64 + 1024));
  EXPECT_LE(up.abs().max().item<double>(), bound);
  EXPECT_GT(up.abs().max().item<double>(), 0.99 * bound);
  const at::Tensor down = record(model, "decoder.0.mlp.down.weight").tensor;
  EXPECT_LE(down.abs().max().item<double>(), 0.1 + 1e-7);
  // A normal truncated at 2 sigma has std 0.05 * 0.8796.
  EXPECT_NEAR(down.std().item<double>(), 0.05 * 0.8796, 0.002);
  EXPECT_TRUE(at::equal(record(model, "decoder.0.normalization.weight").tensor, at::ones({64})));
  const at::Tensor query = record(model, "decoder.0.mixer.query.weight").tensor;
  EXPECT_NEAR(query.std().item<double>(), 0.02, 0.002);
}

TEST(Builder, LoraAdaptersStartAtZeroTrainAloneAndMerge) {
  ModelText text;
  text.model_extra = "  peft: {type: lora, rank: 4, alpha: 8.0}\n";
  Model model = build_text(text.text());
  model.module->eval();
  const auto& b = record(model, "decoder.0.mixer.query.lora_b");
  const auto& a = record(model, "decoder.0.mixer.query.lora_a");
  EXPECT_EQ(a.role, "lora_a");
  EXPECT_EQ(b.role, "lora_b");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(b.shape, (std::vector<int64_t>{64, 4}));
  EXPECT_TRUE(at::equal(b.tensor, at::zeros({64, 4})));
  for (const auto& p : model.parameters)
    EXPECT_EQ(p.trainable, p.role != "base") << p.name;
  EXPECT_EQ(record(model, "decoder.0.mixer.value.lora_a").role, "lora_a");
  EXPECT_THROW(record(model, "decoder.0.mixer.key.lora_a"), std::runtime_error);

  const at::Tensor ids = at::arange(10, at::kLong).unsqueeze(0);
  const at::Tensor base = model.module->forward(ids).logits;
  {
    c10::NoGradGuard no_grad;
    b.tensor.normal_(0, 0.5);
  }
  const at::Tensor tuned = model.module->forward(ids).logits;
  EXPECT_FALSE(close(tuned, base, 1e-4, 1e-4)) << "adapters must change the output";
  // W + alpha / rank * B A, by hand, for one linear.
  const at::Tensor w = record(model, "decoder.0.mixer.query.weight").tensor.detach().clone();
  const at::Tensor merged_by_hand = w + 2.0 * at::matmul(b.tensor, a.tensor);
  EXPECT_EQ(merge_adapters(*model.module), 4);  // query and value of two layers
  EXPECT_TRUE(close(record(model, "decoder.0.mixer.query.weight").tensor, merged_by_hand, 1e-6,
                    1e-7));
  EXPECT_TRUE(close(model.module->forward(ids).logits, tuned, 1e-5, 1e-5));
}

TEST(Builder, SharedPatternBlocksHaveOneSetOfWeights) {
  const std::string yaml = shared_pattern_model();
  Model model = build_text(yaml);
  std::set<std::string> tops;
  for (const auto& p : model.parameters)
    if (p.name.rfind("decoder.", 0) == 0) tops.insert(p.name.substr(8, p.name.find('.', 8) - 8));
  EXPECT_EQ(tops, (std::set<std::string>{"0", "2", "s"}));
  EXPECT_EQ(static_cast<int64_t>(model.parameters.size()),
            config::count_parameters(*document(yaml).model).tensors);
  EXPECT_EQ(record(model, "decoder.s.mixer.query.weight").config_path,
            "model.decoder.blocks.s.mixer.query");
}

TEST(Builder, PrettyPrintShowsResolvedOptions) {
  ModelText text;
  Model model = build_text(text.text());
  std::ostringstream out;
  out << *find_module<>(*model.module, "decoder.0.mixer");
  EXPECT_NE(out.str().find("Attention(heads=4, head_groups=4, head_size=16, causal=true"),
            std::string::npos)
      << out.str();
}

}  // namespace
}  // namespace blocks::testing

namespace blocks::testing {
namespace {

// The zoo's custom-init config (Magneto / Sub-LN, xavier, LeCun head) and a Jamba-style block,
// shrunk; each initialization's defining statistic.
TEST(Builder, MagnetoXavierLecunAndFillFromTheZoo) {
  config::LoadOptions options;
  options.sets = {"model.decoder.num_layers=4"};
  const config::Document doc = zoo("custom-init", options);
  Model model = build_model(*doc.model);
  nn::initialize(model.parameters, 3);
  // Magneto: xavier uniform with gain sqrt(log(2N)), N = 4 layers; up is [3072, 768].
  const double magneto_bound = std::sqrt(std::log(8.0)) * std::sqrt(6.0 / (768 + 3072));
  const at::Tensor up = record(model, "decoder.0.mlp.up.weight").tensor;
  EXPECT_LE(up.abs().max().item<double>(), magneto_bound * (1 + 1e-6));
  EXPECT_GT(up.abs().max().item<double>(), 0.99 * magneto_bound);
  const at::Tensor key = record(model, "decoder.0.mixer.key.weight").tensor;
  const double xavier_bound = std::sqrt(0.5) * std::sqrt(6.0 / (768 + 768));
  EXPECT_LE(key.abs().max().item<double>(), xavier_bound * (1 + 1e-6));
  EXPECT_GT(key.abs().max().item<double>(), 0.99 * xavier_bound);
  EXPECT_NEAR(record(model, "head.output.weight").tensor.std().item<double>(), 1 / std::sqrt(768.0),
              0.001);
  EXPECT_TRUE(at::equal(record(model, "decoder.0.normalization.weight").tensor, at::ones({768})));
  EXPECT_TRUE(at::equal(record(model, "decoder.0.sub_normalization.1.weight").tensor,
                        at::ones({3072})));
  // Truncated at 3 sigma.
  EXPECT_LE(record(model, "embeddings.word.weight").tensor.abs().max().item<double>(), 0.06 + 1e-7);
}

TEST(Builder, ScaledNormalAndMambaInitializations) {
  ModelText text;
  text.layers = 8;
  text.mixer = "{type: mamba, state_size: 4, dt_rank: 4}";
  text.mlp =
      "{type: gated, intermediate_size: 4096, down: {weight_initialization: {type: "
      "scaled_normal, std: 0.02}}}";
  Model model = build_text(text.text(), at::kFloat, 4);
  // GPT-2's residual projections: 0.02 / sqrt(2 x 8 layers).
  EXPECT_NEAR(record(model, "decoder.0.mlp.down.weight").tensor.std().item<double>(), 0.005,
              0.0002);
  // S4D-Real: A_log[c, n] = log(n + 1).
  const at::Tensor a_log = record(model, "decoder.0.mixer.a_log.weight").tensor;
  EXPECT_TRUE(close(a_log, at::log(at::arange(1, 5, at::kFloat)).expand({128, 4}), 0, 1e-7));
  // dt bias: softplus(bias) is dt, log-uniform in [0.001, 0.1].
  const at::Tensor dt = at::softplus(record(model, "decoder.0.mixer.dt.bias").tensor);
  EXPECT_GE(dt.min().item<double>(), 0.001 * (1 - 1e-5));
  EXPECT_LE(dt.max().item<double>(), 0.1 * (1 + 1e-5));
  EXPECT_NEAR(at::log(dt).mean().item<double>(), (std::log(0.001) + std::log(0.1)) / 2, 0.3);
  EXPECT_TRUE(at::equal(record(model, "decoder.0.mixer.d.weight").tensor, at::ones({128})));
}

}  // namespace
}  // namespace blocks::testing

namespace blocks::testing {
namespace {

std::string build_error(const std::function<void()>& run) {
  return message_of<nn::BuildError>(run);
}

// Modules create exactly what their config declares; a slot without a module says which.
TEST(Builder, ErrorsNameTheConfigPath) {
  const config::Document doc = document(ModelText{}.text());
  const auto& model = static_cast<const LanguageModelConfig&>(*doc.model);
  nn::Builder builder(nn::module_registry(), at::TensorOptions().device(at::kMeta));
  torch::nn::Module module;
  const LinearConfig& query =
      static_cast<const AttentionConfig&>(
          *static_cast<const TransformerConfig&>(
               *static_cast<const RepeatSequenceConfig&>(*model.decoder).block)
               .mixer)
          .query;
  EXPECT_EQ(build_error([&] {
              builder.parameter(module, query, "model.decoder.block.mixer.query", "bias",
                                query.bias_initialization.get());
            }),
            "model.decoder.block.mixer.query: the module asks for parameter `bias`, which the "
            "config does not declare (it declares: weight)");
  EXPECT_EQ(build_error([&] {
              builder.parameter(module, query, "model.decoder.block.mixer.query", "weight",
                                nullptr);
            }),
            "model.decoder.block.mixer.query: parameter `weight` has no initialization");
  EXPECT_EQ(build_error([&] { builder.build(*model.peft, "model.peft"); }),
            "model.peft: no module is registered for peft type `none`");
  EXPECT_EQ(build_error([&] { builder.build_as<Linear>(*model.decoder, "model.decoder"); }),
            "model.decoder: type `repeat` does not build the module this slot expects");
}

// Modules read resolved fields as resolution left them (nn::resolved): a config that skipped
// resolution is refused by field, never built with a default the module re-applies.
TEST(Builder, RefusesFieldsResolutionDidNotSet) {
  config::Document doc = document(ModelText{}.text());
  auto& model = static_cast<LanguageModelConfig&>(*doc.model);
  auto& block = *model.decoder.as<RepeatSequenceConfig>()->block.as<TransformerConfig>();
  auto& attention = *block.mixer.as<AttentionConfig>();
  nn::Builder builder(nn::module_registry(), at::TensorOptions().device(at::kMeta));
  EXPECT_EQ(build_error([&] { builder.build(attention, "model.decoder.block.mixer"); }), "no error");
  attention.head_groups.reset();
  EXPECT_EQ(build_error([&] { builder.build(attention, "model.decoder.block.mixer"); }),
            "model.decoder.block.mixer.head_groups is unset: modules are built from resolved "
            "configs");
  attention.query.bias.reset();
  EXPECT_EQ(build_error([&] { builder.build(attention.query, "model.decoder.block.mixer.query"); }),
            "model.decoder.block.mixer.query.bias is unset: modules are built from resolved "
            "configs");
}

}  // namespace
}  // namespace blocks::testing
