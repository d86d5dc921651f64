// What composing models from YAML costs at training time: a small LLaVA (a CLIP-convention
// vision tower, LLaVA's two-layer projector, the ~125M Llama of model_bench) built by blocks as
// an `early_fusion` model, against the same composition written by hand in plain LibTorch the
// way transformers' modeling_clip.py and modeling_llava.py compute it (tower to the feature
// layer, class token dropped, projector, masked_scatter into the token embeddings, the Llama on
// inputs_embeds). The hand model gets a copy of the YAML model's weights and the program aborts
// unless both give the same logits. Harness (alternating order, per-child peak memory):
// benchmarks/paired.h.
//   ./build/benchmarks/llava_bench --benchmark_counters_tabular=true
//       [--device=cuda] [--batch=1] [--tokens=256] [--images=2] [--iterations=8] [--no-memory]
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "benchmarks/hand_llama.h"
#include "benchmarks/paired.h"
#include "blocks/models/model_module.h"
#include "blocks/registry.h"
#include "framework/config/document.h"

namespace {

// The tower: CLIP's conventions at ViT-S width, 6 layers on 112-pixel images of 14-pixel
// patches (64 patches and a class token); LLaVA reads layer 5 (-2) without the class token.
struct TowerShape {
  int64_t hidden = 384, layers = 6, heads = 6, intermediate = 1536, image = 112, patch = 14;
  double epsilon = 1e-5;
  int64_t patches() const { return (image / patch) * (image / patch); }
  int64_t built() const { return layers - 1; }  // vision_feature_layer -2
};
const TowerShape kTower;
const hand::LlamaShape kText;
const int64_t kImageToken = 31999;  // the last row of the decoder's table

paired::Options options;
int64_t images = 2;  // per row (--images=)

[[noreturn]] void fail(const std::string& message) { paired::fail("llava_bench", message); }

std::string yaml_text() {
  const auto n = [](auto v) { return std::to_string(v); };
  const TowerShape& v = kTower;
  const hand::LlamaShape& s = kText;
  return "version: 1\nmodel:\n  type: early_fusion\n  decoder:\n    type: language_model\n"
         "    hidden_size: " + n(s.hidden) +
         "\n    add_linear_biases: false\n    embeddings: {vocab_size: " + n(s.vocab) +
         "}\n    decoder:\n      type: repeat\n      num_layers: " + n(s.layers) +
         "\n      block:\n        type: transformer\n        mixer:\n          type: attention\n"
         "          heads: " + n(s.heads) + "\n          head_groups: " + n(s.groups) +
         "\n          head_size: " + n(s.head_size) +
         "\n          rotary: {type: default, theta: 500000.0, layout: half}\n"
         "        mlp: {type: gated, intermediate_size: " + n(s.intermediate) +
         ", activation: silu}\n        normalization: {type: rms_norm, epsilon: 1.0e-5}\n"
         "    head:\n      normalization: {type: rms_norm, epsilon: 1.0e-5}\n      tied: false\n"
         "  encoders:\n    image:\n      encoder:\n        type: vision_transformer\n"
         "        hidden_size: " + n(v.hidden) + "\n        image_size: " + n(v.image) +
         "\n        patch_size: " + n(v.patch) +
         "\n        pre_normalization: {type: layer_norm, epsilon: 1.0e-5}\n"
         "        body:\n          type: repeat\n          num_layers: " + n(v.layers) +
         "\n          block:\n            type: transformer\n            add_linear_biases: true\n"
         "            mixer: {type: attention, heads: " + n(v.heads) +
         ", causal: false}\n            mlp: {type: mlp, intermediate_size: " +
         n(v.intermediate) +
         ", activation: quick_gelu}\n            normalization: {type: layer_norm, epsilon: "
         "1.0e-5}\n        feature_layers: [-2]\n        drop_class_token: true\n"
         "      connectors:\n        - {type: mlp, activation: gelu}\n"
         "  encoder_tokens: {image: " + n(kImageToken) + "}\n"
         "  encoders_trainable: true\n";
}

blocks::Model build_yaml_model(at::Device device) {
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::config::load_document_text(yaml_text(), "llava_bench.yaml",
                                                blocks::registry(), diagnostics);
  if (!doc) fail("the benchmark config does not load:\n" + diagnostics.format());
  blocks::Model model =
      blocks::build_model(*doc->model, at::TensorOptions().dtype(at::kFloat).device(device));
  blocks::nn::initialize(model.parameters, /*seed=*/0);
  return model;
}

// ---- The hand-written LLaVA (transformers' modeling_clip.py and modeling_llava.py) ---------
namespace hand_llava {

// nn.Linear with a bias.
struct Linear : torch::nn::Module {
  Linear(int64_t in, int64_t out, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::empty({out, in}, o));
    bias = register_parameter("bias", at::zeros({out}, o));
  }
  at::Tensor forward(const at::Tensor& x) { return at::linear(x, weight, bias); }
  at::Tensor weight, bias;
};

struct LayerNorm : torch::nn::Module {
  LayerNorm(int64_t width, double eps, const at::TensorOptions& o) : eps(eps) {
    weight = register_parameter("weight", at::ones({width}, o));
    bias = register_parameter("bias", at::zeros({width}, o));
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
  }
  at::Tensor weight, bias;
  double eps;
};

// CLIPEncoderLayer: pre-LN attention (biased projections, bidirectional) and quick_gelu MLP.
struct ClipLayer : torch::nn::Module {
  ClipLayer(const TowerShape& s, const at::TensorOptions& o) : heads(s.heads) {
    layer_norm1 = register_module("layer_norm1", std::make_shared<LayerNorm>(s.hidden, s.epsilon, o));
    q_proj = register_module("q_proj", std::make_shared<Linear>(s.hidden, s.hidden, o));
    k_proj = register_module("k_proj", std::make_shared<Linear>(s.hidden, s.hidden, o));
    v_proj = register_module("v_proj", std::make_shared<Linear>(s.hidden, s.hidden, o));
    out_proj = register_module("out_proj", std::make_shared<Linear>(s.hidden, s.hidden, o));
    layer_norm2 = register_module("layer_norm2", std::make_shared<LayerNorm>(s.hidden, s.epsilon, o));
    fc1 = register_module("fc1", std::make_shared<Linear>(s.hidden, s.intermediate, o));
    fc2 = register_module("fc2", std::make_shared<Linear>(s.intermediate, s.hidden, o));
  }
  at::Tensor forward(const at::Tensor& x) {
    const int64_t b = x.size(0), t = x.size(1), d = x.size(2) / heads;
    const at::Tensor h = layer_norm1->forward(x);
    auto split = [&](const at::Tensor& y) { return y.view({b, t, heads, d}).transpose(1, 2); };
    const at::Tensor q = split(q_proj->forward(h)), k = split(k_proj->forward(h)),
                     v = split(v_proj->forward(h));
    const at::Tensor attn =
        blocks::nn::attention(q, k, v, {}, 0.0, /*causal=*/false, 1.0 / std::sqrt(double(d)));
    const at::Tensor y = x + out_proj->forward(attn.transpose(1, 2).reshape({b, t, heads * d}));
    const at::Tensor m = fc1->forward(layer_norm2->forward(y));
    return y + fc2->forward(m * at::sigmoid(1.702 * m));  // quick_gelu
  }
  int64_t heads;
  std::shared_ptr<LayerNorm> layer_norm1, layer_norm2;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj, fc1, fc2;
};

struct Llava : torch::nn::Module {
  Llava(const TowerShape& v, const hand::LlamaShape& s, const at::TensorOptions& o) : tower(v) {
    patch_embedding = register_parameter(
        "patch_embedding", at::empty({v.hidden, 3, v.patch, v.patch}, o));
    class_embedding = register_parameter("class_embedding", at::empty({v.hidden}, o));
    position_embedding =
        register_parameter("position_embedding", at::empty({v.patches() + 1, v.hidden}, o));
    pre_layrnorm = register_module("pre_layrnorm", std::make_shared<LayerNorm>(v.hidden, v.epsilon, o));
    auto list = register_module("layers", std::make_shared<torch::nn::Module>());
    for (int64_t i = 0; i < v.built(); ++i)
      layers.push_back(list->register_module(std::to_string(i), std::make_shared<ClipLayer>(v, o)));
    linear_1 = register_module("linear_1", std::make_shared<Linear>(v.hidden, s.hidden, o));
    linear_2 = register_module("linear_2", std::make_shared<Linear>(s.hidden, s.hidden, o));
    language_model = register_module("language_model", std::make_shared<hand::Llama>(s, o));
  }
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& pixels) {
    // CLIPVisionEmbeddings, pre_layrnorm, the layers up to hidden_states[-2].
    at::Tensor x = at::conv2d(pixels, patch_embedding, {}, {tower.patch}).flatten(2).transpose(1, 2);
    const int64_t n = x.size(0);
    x = at::cat({class_embedding.view({1, 1, -1}).expand({n, 1, -1}), x}, 1) + position_embedding;
    x = pre_layrnorm->forward(x);
    for (const auto& layer : layers) x = layer->forward(x);
    // vision_feature_select_strategy "default": drop the class token; LlavaMultiModalProjector.
    const at::Tensor features =
        linear_2->forward(at::gelu(linear_1->forward(x.slice(1, 1))));
    // LlavaForConditionalGeneration: image features into the placeholder positions.
    const at::Tensor embeds = at::embedding(language_model->embed_tokens, tokens);
    const at::Tensor mask = (tokens == kImageToken).unsqueeze(-1).expand_as(embeds);
    return language_model->forward_embeddings(embeds.masked_scatter(mask, features));
  }
  std::map<std::string, std::string> blocks_names() const {
    const std::string e = "encoders.image.encoder.";
    std::map<std::string, std::string> m = {
        {"patch_embedding", e + "patch_embedding.weight"},
        {"class_embedding", e + "class_embedding.weight"},
        {"position_embedding", e + "position_embedding.weight"},
        {"pre_layrnorm.weight", e + "pre_normalization.weight"},
        {"pre_layrnorm.bias", e + "pre_normalization.bias"}};
    const std::vector<std::pair<std::string, std::string>> per_layer = {
        {"layer_norm1", "normalization"}, {"q_proj", "mixer.query"}, {"k_proj", "mixer.key"},
        {"v_proj", "mixer.value"},        {"out_proj", "mixer.output"},
        {"layer_norm2", "mlp_normalization"}, {"fc1", "mlp.up"},    {"fc2", "mlp.down"}};
    for (int64_t i = 0; i < tower.built(); ++i)
      for (const auto& [ours, theirs] : per_layer)
        for (const char* part : {".weight", ".bias"})
          m["layers." + std::to_string(i) + "." + ours + part] =
              e + "body." + std::to_string(i) + "." + theirs + part;
    for (const char* part : {".weight", ".bias"}) {
      m[std::string("linear_1") + part] = std::string("encoders.image.connectors.0.up") + part;
      m[std::string("linear_2") + part] = std::string("encoders.image.connectors.0.down") + part;
    }
    for (const auto& [ours, theirs] : language_model->blocks_names("decoder."))
      m["language_model." + ours] = theirs;
    return m;
  }

  TowerShape tower;
  at::Tensor patch_embedding, class_embedding, position_embedding;
  std::shared_ptr<LayerNorm> pre_layrnorm;
  std::vector<std::shared_ptr<ClipLayer>> layers;
  std::shared_ptr<Linear> linear_1, linear_2;
  std::shared_ptr<hand::Llama> language_model;
};

}  // namespace hand_llava

// Rows of text with `images` runs of 64 placeholders each, spread out; pixels and targets.
struct Batch {
  at::Tensor tokens, pixels, targets;
};

Batch make_batch(const at::TensorOptions& o) {
  at::manual_seed(1);
  const auto longs = o.dtype(at::kLong);
  Batch b;
  b.tokens = at::randint(kImageToken, {options.batch, options.tokens}, longs);
  const int64_t run = kTower.patches(), gap = options.tokens / images;
  if (gap < run) fail("--tokens too small for --images runs of " + std::to_string(run));
  for (int64_t i = 0; i < images; ++i) b.tokens.narrow(1, i * gap + 1, run).fill_(kImageToken);
  b.pixels = at::randn({options.batch * images, 3, kTower.image, kTower.image}, o);
  b.targets = at::randint(kText.vocab, {options.batch, options.tokens}, longs);
  return b;
}

paired::Forward yaml_forward(blocks::Model& model, const Batch& b) {
  auto module = model.module;
  return [module, b] {
    blocks::ModelInput input;
    input.tokens = b.tokens;
    input.named["pixel_values"] = b.pixels;
    return module->forward(input).logits;
  };
}

struct Pair {
  blocks::Model yaml;
  std::shared_ptr<hand_llava::Llava> hand;
  Batch batch;
  paired::Models models;
};

Pair& pair() {
  static Pair p = [] {
    Pair p;
    const auto o = at::TensorOptions().dtype(at::kFloat).device(options.device);
    p.yaml = build_yaml_model(options.device);
    p.hand = std::make_shared<hand_llava::Llava>(kTower, kText, o);
    paired::copy_weights(*p.yaml.module, *p.hand, p.hand->blocks_names());
    p.batch = make_batch(o);
    p.models.yaml = yaml_forward(p.yaml, p.batch);
    auto hand = p.hand;
    const Batch b = p.batch;
    p.models.hand = [hand, b] { return hand->forward(b.tokens, b.pixels); };
    p.models.yaml_parameters = p.yaml.module->parameters();
    p.models.hand_parameters = hand->parameters();
    p.models.targets = b.targets;

    torch::NoGradGuard no_grad;
    const at::Tensor a = p.models.yaml(), c = p.models.hand();
    const double diff = (a - c).abs().max().item<double>();
    std::printf(
        "model: %.1fM parameters (blocks), %.1fM (hand); %ld x %ld tokens with %ld images of %ld "
        "features a row; max |logit difference| %.2e, largest |logit| %.2f; %s, %d ATen "
        "threads\n",
        paired::parameter_count(*p.yaml.module) / 1e6, paired::parameter_count(*hand) / 1e6,
        static_cast<long>(options.batch), static_cast<long>(options.tokens),
        static_cast<long>(images), static_cast<long>(kTower.patches()), diff,
        a.abs().max().item<double>(), options.device.str().c_str(), at::get_num_threads());
    if (!(diff <= 1e-4)) fail("the two models disagree (max |logit difference| > 1e-4)");
    return p;
  }();
  return p;
}

paired::Memory memory_yaml, memory_hand;

void measure_memory() {
  const auto o = at::TensorOptions().dtype(at::kFloat);
  memory_yaml = paired::memory_of([&] {
    blocks::Model model = build_yaml_model(at::kCPU);
    const Batch b = make_batch(o);
    return paired::Training{yaml_forward(model, b), model.module->parameters(), b.targets};
  });
  memory_hand = paired::memory_of([&] {
    auto model = std::make_shared<hand_llava::Llava>(kTower, kText, o);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.normal_(0.0, 0.02);
    }
    const Batch b = make_batch(o);
    return paired::Training{[model, b] { return model->forward(b.tokens, b.pixels); },
                            model->parameters(), b.targets};
  });
  std::printf(
      "RSS with the model built: yaml %.0f MiB, hand %.0f MiB\n"
      "peak RSS of training steps (own process each): yaml %.0f MiB, hand %.0f MiB, ratio %.3f\n",
      memory_yaml.after_build_mb, memory_hand.after_build_mb, memory_yaml.peak_mb,
      memory_hand.peak_mb, memory_yaml.peak_mb / memory_hand.peak_mb);
}

}  // namespace

int main(int argc, char** argv) {
  paired::parse_flags(argc, argv, options, [](const std::string& arg) {
    if (arg.rfind("--images=", 0) != 0) return false;
    images = std::atol(arg.c_str() + 9);
    return true;
  });
  return paired::run_benchmarks(
      argc, argv, "llava_bench", options, []() -> paired::Models& { return pair().models; },
      measure_memory, memory_yaml, memory_hand);
}
