// hf_forward: run a Hugging Face checkpoint folder (config.json + safetensors) on token ids and
// print, for each position, the id of the most likely next token (the logits' argmax). The
// folder's config.json becomes a blocks document as `blockc import hf` converts it, and its
// tensors load through the family's name table, as `blockc forward --model FOLDER` does.
//
//   hf_forward path/to/Llama-folder 1 15043 3186
#include <ATen/ATen.h>

#include <exception>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "blocks/models/model_module.h"  // blocks::build_model and blocks::Model
#include "blocks/registry.h"             // blocks::registry(): every registered config type
#include "framework/hf/folder.h"         // hf::folder_document: config.json as a blocks document
#include "framework/weights/hf_folder.h" // weights::load_hf_folder, weights::checkpoint_dtype
#include "framework/weights/mapping.h"   // weights::checkpoint_files

namespace {

int run(const std::string& folder, const std::vector<int64_t>& ids) {
  // 1. The architecture, from config.json; problems print as blockc prints them.
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::hf::folder_document(folder, blocks::registry(), diagnostics);
  std::cerr << diagnostics.format();
  if (!doc) return 1;

  // 2. The model, built in the dtype most of the checkpoint is in, then filled from the folder's
  //    safetensors (every tensor must be there with its shape, or this throws naming it).
  const auto files = blocks::weights::checkpoint_files(folder);
  blocks::Model model = blocks::build_model(
      *doc->model, at::TensorOptions().dtype(blocks::weights::checkpoint_dtype(files)));
  blocks::weights::NamedTensors parameters;
  for (const auto& p : model.parameters) parameters.emplace_back(p.name, p.tensor.detach());
  blocks::weights::load_hf_folder(parameters, folder);

  // 3. One forward pass over a batch of one sequence, without autograd.
  at::NoGradGuard no_grad;
  model.module->eval();
  const at::Tensor tokens = at::tensor(ids, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
  const at::Tensor logits = model.module->forward(tokens).logits;  // [1, tokens, vocab]
  const at::Tensor best = logits[0].argmax(/*dim=*/-1);
  for (int64_t i = 0; i < best.size(0); ++i)
    std::cout << "position " << i << ": token " << ids[i] << " -> " << best[i].item<int64_t>()
              << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " HF_FOLDER TOKEN_ID...\n";
    return 2;
  }
  try {
    std::vector<int64_t> ids;
    for (int i = 2; i < argc; ++i) ids.push_back(std::stoll(argv[i]));
    return run(argv[1], ids);
  } catch (const std::exception& e) {  // missing tensors, wrong shapes, ids out of range
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
