// Test support for module tests: build and initialize models from YAML text, find a module by
// name, compare tensors, and run a Python reference (Debian's python3-torch) on tensors handed
// over in safetensors files.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "blocks/models/language_model_module.h"
#include "framework/weights/safetensors.h"
#include "tests/support/model_text.h"

namespace blocks::testing {

// A model built from YAML text (resolved through the real loader) and initialized with `seed`.
inline Model build_text(const std::string& text, at::ScalarType dtype = at::kFloat,
                        uint64_t seed = 0) {
  const config::Document doc = document(text);
  Model model = build_model(*doc.model, at::TensorOptions().dtype(dtype));
  nn::initialize(model.parameters, seed);
  return model;
}

// The language model module of `model` (built from a language_model config).
inline LanguageModel& language_model(const Model& model) {
  auto* lm = dynamic_cast<LanguageModel*>(model.module.get());
  if (!lm) throw std::logic_error("the model is not a language_model");
  return *lm;
}

// The module called `name` below `root` ("decoder.0.mixer"), as T; fails the test when absent.
template <class T = torch::nn::Module>
std::shared_ptr<T> find_module(const torch::nn::Module& root, const std::string& name) {
  for (const auto& item : root.named_modules())
    if (item.key() == name) {
      auto typed = std::dynamic_pointer_cast<T>(item.value());
      EXPECT_TRUE(typed) << name << " is not of the expected type";
      return typed;
    }
  ADD_FAILURE() << "no module " << name;
  return nullptr;
}

// |a - b| <= atol + rtol |b| elementwise, with the worst element in the message.
inline ::testing::AssertionResult close(const at::Tensor& a, const at::Tensor& b,
                                        double rtol = 1e-5, double atol = 1e-6) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  const at::Tensor x = a.detach().to(at::kDouble).cpu(), y = b.detach().to(at::kDouble).cpu();
  const at::Tensor excess = (x - y).abs() - (atol + rtol * y.abs());
  const double worst = excess.numel() ? excess.max().item<double>() : 0.0;
  if (worst <= 0) return ::testing::AssertionSuccess();
  const int64_t at_index = excess.flatten().argmax().item<int64_t>();
  return ::testing::AssertionFailure()
         << "max |a - b| = " << (x - y).abs().max().item<double>() << "; at flat index " << at_index
         << ": " << x.flatten()[at_index].item<double>() << " vs "
         << y.flatten()[at_index].item<double>();
}

// --set overrides that shrink configs/gpt2.yaml to a model tests build in milliseconds.
inline const std::vector<std::string> kSmallGpt2 = {
    "model.hidden_size=64",
    "model.decoder.num_layers=2",
    "model.decoder.block.mixer.heads=4",
    "model.decoder.block.mlp.intermediate_size=256",
    "model.embeddings.vocab_size=100",
    "model.embeddings.max_positions=32",
};

inline const char* reference_python() { return "/usr/bin/python3"; }

// Whether Debian's python3 with torch is there (tests skip their reference part otherwise).
// CTest counts a skip as a pass, so where references must run (CI sets
// BLOCKS_REQUIRE_REFERENCES=1 in .ci/run) their absence is a failure instead.
inline bool have_reference_python() {
  static const bool ok =
      std::system((std::string(reference_python()) + " -c 'import torch' 2>/dev/null").c_str()) ==
      0;
  if (!ok && std::getenv("BLOCKS_REQUIRE_REFERENCES"))
    ADD_FAILURE() << reference_python()
                  << " with torch is missing, and BLOCKS_REQUIRE_REFERENCES is set";
  return ok;
}

// Runs `script` (Python; `inputs` and `load`/`save` from tests/support/tensors.py are in scope,
// and it must call save(outputs_dict, OUTPUT)) on `inputs`; returns what it saved.
inline std::map<std::string, at::Tensor> run_reference(
    const std::string& script, const std::map<std::string, at::Tensor>& inputs) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) /
                       ("reference_" + std::to_string(::getpid()) + "_" +
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::create_directories(dir);
  std::vector<std::pair<std::string, at::Tensor>> list(inputs.begin(), inputs.end());
  weights::write_safetensors((dir / "in.safetensors").string(), list);
  std::ofstream(dir / "script.py")
      << "import sys, math\nimport torch\nsys.path.insert(0, '" BLOCKS_SOURCE_DIR
         "/tests/support')\nfrom tensors import load, save\n"
      << "inputs = load('" << (dir / "in.safetensors").string() << "')\nOUTPUT = '"
      << (dir / "out.safetensors").string() << "'\n"
      << script << "\n";
  const std::string command = std::string(reference_python()) + " " + (dir / "script.py").string() +
                              " 2>" + (dir / "stderr.txt").string();
  if (std::system(command.c_str()) != 0) {
    std::ifstream err(dir / "stderr.txt");
    std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    ADD_FAILURE() << "reference script failed:\n" << text;
    return {};
  }
  auto file = weights::SafetensorsFile::open((dir / "out.safetensors").string());
  std::map<std::string, at::Tensor> out;
  for (const auto& info : file.tensors()) out[info.name] = file.tensor(info.name).clone();
  return out;
}

// The parameters of `model` by full name (for handing to a reference).
inline std::map<std::string, at::Tensor> named_parameters(const Model& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : model.parameters) out[p.name] = p.tensor.detach();
  return out;
}

}  // namespace blocks::testing
