// train_from_yaml: load a blocks model config, build and initialize the model, and train it with
// AdamW on one batch of random tokens (next-token cross-entropy), printing the loss per step.
// The model can memorize one batch, so the loss must fall; the program exits 1 when it does not.
//
//   train_from_yaml examples/tiny.yaml [steps]
#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <exception>
#include <iostream>
#include <string>

#include "blocks/models/language_model.h"  // LanguageModelConfig: the vocabulary size
#include "blocks/models/model_module.h"    // blocks::build_model and blocks::Model
#include "blocks/registry.h"               // blocks::registry(): every registered config type
#include "framework/config/document.h"     // config::load_document
#include "framework/nn/param_groups.h"     // blocks::param_groups: one group per lr scale

namespace {

int train(const std::string& path, int steps) {
  // 1. Load: compose, validate and resolve the file. Every problem found is a diagnostic
  //    ("FILE:LINE:COL: error: PATH: message"), printed as blockc prints them.
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::config::load_document(path, blocks::registry(), diagnostics);
  std::cerr << diagnostics.format();
  if (!doc) return 1;
  const auto* config = dynamic_cast<const blocks::LanguageModelConfig*>(doc->model.get());
  if (!config) {
    std::cerr << path << ": this example trains a language_model, not a "
              << doc->model->type().name << "\n";
    return 1;
  }

  // 2. Build the modules (float32 on the CPU) and fill every parameter from its config's
  //    initialization, deterministically for the seed.
  blocks::Model model = blocks::build_model(*doc->model, at::TensorOptions().dtype(at::kFloat));
  blocks::nn::initialize(model.parameters, /*seed=*/0);
  model.module->train();

  // 3. The optimizer: parameters grouped by their configs' lr_scale (frozen ones left out).
  const torch::optim::AdamWOptions options(/*lr=*/3e-3);
  torch::optim::AdamW optimizer(blocks::param_groups(model.parameters, options), options);

  // 4. One batch of random token ids [batch, tokens]; each position predicts the next token.
  at::manual_seed(0);
  const int64_t vocab = config->embeddings.vocab_size;
  const at::Tensor tokens = at::randint(vocab, {4, 33}, at::TensorOptions().dtype(at::kLong));
  const at::Tensor inputs = tokens.slice(/*dim=*/1, 0, -1);
  const at::Tensor targets = tokens.slice(/*dim=*/1, 1).reshape({-1});

  double first = 0, last = 0;
  for (int step = 1; step <= steps; ++step) {
    optimizer.zero_grad();
    const blocks::ModelOutput out = model.module->forward(inputs);
    at::Tensor loss = at::cross_entropy_loss(out.logits.reshape({-1, vocab}), targets);
    if (out.aux_loss.defined()) loss = loss + out.aux_loss;  // MoE load balancing, if any
    loss.backward();
    optimizer.step();
    last = loss.item<double>();
    if (step == 1) first = last;
    std::cout << "step " << step << " loss " << last << "\n";
  }
  if (!(last < first)) {
    std::cerr << "the loss did not fall: " << first << " at step 1, " << last << " at the end\n";
    return 1;
  }
  std::cout << "loss fell from " << first << " to " << last << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: " << argv[0] << " CONFIG.yaml [steps]\n";
    return 2;
  }
  try {
    return train(argv[1], argc == 3 ? std::stoi(argv[2]) : 20);
  } catch (const std::exception& e) {  // a config the builder refuses, a bad step count
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
