// What building a model from YAML costs at training time: a ~125M-parameter Llama-style model
// built by blocks from a config, against the same model written by hand in plain LibTorch.
//   ./build/benchmarks/model_bench --benchmark_counters_tabular=true
//       [--device=cuda] [--batch=1] [--tokens=256] [--iterations=8] [--no-memory]
//
// The hand model is a straightforward Hugging Face-style implementation (LlamaRMSNorm,
// rotate_half rotary, repeat_kv, the same fused attention call as blocks). It gets a copy of
// the YAML model's weights, and the program aborts unless both give the same logits: a ratio of
// two different computations would say nothing. Both models are timed in the same benchmark,
// alternating which goes first, so machine drift (other builds on the box) hits both alike.
// Peak memory is each model's own: one forked child per model, so neither sees the other's
// allocations, read back with wait4's per-child rusage.
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "benchmarks/hand_llama.h"
#include "benchmarks/paired.h"
#include "blocks/models/language_model_module.h"
#include "blocks/registry.h"
#include "framework/config/document.h"

namespace {

// The model: Llama 3's shape scaled down to ~125M parameters (75M of them outside the
// embedding and output matrices).
const hand::LlamaShape kShape;

paired::Options options;

[[noreturn]] void fail(const std::string& message) { paired::fail("model_bench", message); }

std::string yaml_text(const hand::LlamaShape& s) {
  const auto n = [](auto v) { return std::to_string(v); };
  return "version: 1\nmodel:\n  type: language_model\n  hidden_size: " + n(s.hidden) +
         "\n  add_linear_biases: false\n  embeddings: {vocab_size: " + n(s.vocab) +
         "}\n  decoder:\n    type: repeat\n    num_layers: " + n(s.layers) +
         "\n    block:\n      type: transformer\n      mixer:\n        type: attention\n"
         "        heads: " +
         n(s.heads) + "\n        head_groups: " + n(s.groups) +
         "\n        head_size: " + n(s.head_size) +
         "\n        rotary: {type: default, theta: 500000.0, layout: half}\n"
         "      mlp: {type: gated, intermediate_size: " +
         n(s.intermediate) +
         ", activation: silu}\n      normalization: {type: rms_norm, epsilon: 1.0e-5}\n"
         "  head:\n    normalization: {type: rms_norm, epsilon: 1.0e-5}\n    tied: false\n";
}

blocks::Model build_yaml_model(at::Device device) {
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::config::load_document_text(yaml_text(kShape), "model_bench.yaml",
                                                blocks::registry(), diagnostics);
  if (!doc) fail("the benchmark config does not load:\n" + diagnostics.format());
  blocks::Model model =
      blocks::build_model(*doc->model, at::TensorOptions().dtype(at::kFloat).device(device));
  blocks::nn::initialize(model.parameters, /*seed=*/0);
  return model;
}

// Both models with identical weights, checked to agree, and one batch of data.
struct Pair {
  blocks::Model yaml;
  std::shared_ptr<hand::Llama> hand;
  at::Tensor tokens, targets;
  paired::Models models;
};

Pair& pair() {
  static Pair p = [] {
    Pair p;
    const auto o = at::TensorOptions().dtype(at::kFloat).device(options.device);
    p.yaml = build_yaml_model(options.device);
    p.hand = std::make_shared<hand::Llama>(kShape, o);
    paired::copy_weights(*p.yaml.module, *p.hand, p.hand->blocks_names());
    const auto longs = o.dtype(at::kLong);
    at::manual_seed(1);
    p.tokens = at::randint(kShape.vocab, {options.batch, options.tokens}, longs);
    p.targets = at::randint(kShape.vocab, {options.batch, options.tokens}, longs);
    auto yaml = p.yaml.module;
    auto hand = p.hand;
    const at::Tensor tokens = p.tokens;
    p.models.yaml = [yaml, tokens] { return yaml->forward(tokens).logits; };
    p.models.hand = [hand, tokens] { return hand->forward(tokens); };
    p.models.yaml_parameters = yaml->parameters();
    p.models.hand_parameters = hand->parameters();
    p.models.targets = p.targets;

    torch::NoGradGuard no_grad;
    const at::Tensor a = p.models.yaml(), b = p.models.hand();
    const double diff = (a - b).abs().max().item<double>();
    std::printf(
        "model: %.1fM parameters (blocks), %.1fM (hand); max |logit difference| %.2e, "
        "largest |logit| %.2f; %s, %d ATen threads\n",
        paired::parameter_count(*yaml) / 1e6, paired::parameter_count(*hand) / 1e6, diff,
        a.abs().max().item<double>(), options.device.str().c_str(), at::get_num_threads());
    if (!(diff <= 1e-4)) fail("the two models disagree (max |logit difference| > 1e-4)");
    return p;
  }();
  return p;
}

paired::Memory memory_yaml, memory_hand;

void measure_memory() {
  const auto o = at::TensorOptions().dtype(at::kFloat);
  auto data = [] {
    at::manual_seed(1);
    return std::pair{at::randint(kShape.vocab, {options.batch, options.tokens}, at::kLong),
                     at::randint(kShape.vocab, {options.batch, options.tokens}, at::kLong)};
  };
  // The weights' values do not matter here, so the hand model keeps its own random init.
  memory_yaml = paired::memory_of([&] {
    blocks::Model model = build_yaml_model(at::kCPU);
    auto [tokens, targets] = data();
    auto module = model.module;
    return paired::Training{[module, tokens] { return module->forward(tokens).logits; },
                            module->parameters(), targets};
  });
  memory_hand = paired::memory_of([&] {
    auto model = std::make_shared<hand::Llama>(kShape, o);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.normal_(0.0, 0.02);
    }
    auto [tokens, targets] = data();
    return paired::Training{[model, tokens] { return model->forward(tokens); },
                            model->parameters(), targets};
  });
  std::printf(
      "RSS with the model built: yaml %.0f MiB, hand %.0f MiB\n"
      "peak RSS of training steps (own process each, batch %ld x %ld tokens): "
      "yaml %.0f MiB, hand %.0f MiB, ratio %.3f\n",
      memory_yaml.after_build_mb, memory_hand.after_build_mb, static_cast<long>(options.batch),
      static_cast<long>(options.tokens), memory_yaml.peak_mb, memory_hand.peak_mb,
      memory_yaml.peak_mb / memory_hand.peak_mb);
}

// ---- Benchmarks -----------------------------------------------------------------------------
}  // namespace

int main(int argc, char** argv) {
  paired::parse_flags(argc, argv, options);
  return paired::run_benchmarks(
      argc, argv, "model_bench", options, []() -> paired::Models& { return pair().models; },
      measure_memory, memory_yaml, memory_hand);
}
