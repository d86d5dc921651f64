// PEFT folders (framework/weights/adapters.h) against peft's own semantics: a GPT-2 folder in
// transformers' layout and a PEFT LoRA folder for it, written by an independent writer (Debian's
// python3-torch) as peft's save_pretrained lays it out (peft/utils/save_and_load.py: keys
// base_model.model.<module>.lora_A.weight [r, in] / .lora_B.weight [out, r]; Conv1D modules with
// fan_in_fan_out, their delta transposed as peft/tuners/lora/layer.py Linear.get_delta_weight
// computes it; one A shared by c_attn's query, key and value rows, as peft trains a fused
// module). blocks loads it onto the model built from config.json, merges it as the formula says,
// computes the merged model's logits unmerged, writes it back, and refuses what it cannot
// compute (DoRA, rsLoRA, biases, another scale, a missing or an extra adapter) with one message.
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>

#include "framework/weights/safetensors.h"
#include "tests/support/blockc_run.h"
#include "tests/support/reference_folder.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// base/: GPT-2 in HF names; peft/: LoRA of rank R, alpha ALPHA on attn.c_attn and attn.c_proj;
// merged/: base with W += (B @ A)^T * ALPHA / R (Conv1D keeps W as [in, out]); in.safetensors.
const char* const kWriter = R"(
import json, os, sys
sys.path.insert(0, SOURCE + '/tests/support')
from tensors import save
torch.manual_seed(5)
r = lambda *s: torch.randn(*s) * 0.2
d, L, V, P, H, R, ALPHA = 32, 2, 64, 16, 2, 2, 4.0
hf = {'transformer.wte.weight': r(V, d), 'transformer.wpe.weight': r(P, d)}
for i in range(L):
    h = f'transformer.h.{i}.'
    hf[h + 'ln_1.weight'], hf[h + 'ln_1.bias'] = 1 + r(d), r(d)
    hf[h + 'attn.bias'] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
    hf[h + 'attn.c_attn.weight'], hf[h + 'attn.c_attn.bias'] = r(d, 3 * d), r(3 * d)
    hf[h + 'attn.c_proj.weight'], hf[h + 'attn.c_proj.bias'] = r(d, d), r(d)
    hf[h + 'ln_2.weight'], hf[h + 'ln_2.bias'] = 1 + r(d), r(d)
    hf[h + 'mlp.c_fc.weight'], hf[h + 'mlp.c_fc.bias'] = r(d, 4 * d), r(4 * d)
    hf[h + 'mlp.c_proj.weight'], hf[h + 'mlp.c_proj.bias'] = r(4 * d, d), r(d)
hf['transformer.ln_f.weight'], hf['transformer.ln_f.bias'] = 1 + r(d), r(d)
config = {'model_type': 'gpt2', 'architectures': ['GPT2LMHeadModel'], 'vocab_size': V,
          'n_positions': P, 'n_embd': d, 'n_layer': L, 'n_head': H, 'n_inner': None,
          'activation_function': 'gelu_new', 'layer_norm_epsilon': 1e-5}
adapters, merged = {}, dict(hf)
for i in range(L):
    for module, fan_in, fan_out in (('attn.c_attn', d, 3 * d), ('attn.c_proj', d, d)):
        key = f'base_model.model.transformer.h.{i}.{module}'
        A, B = r(R, fan_in), r(fan_out, R)
        adapters[key + '.lora_A.weight'], adapters[key + '.lora_B.weight'] = A, B
        w = f'transformer.h.{i}.{module}.weight'
        merged[w] = hf[w] + (B @ A).T * (ALPHA / R)
def folder(name, tensors, file, meta, meta_name):
    os.makedirs(DIR + '/' + name)
    save(tensors, f'{DIR}/{name}/{file}')
    json.dump(meta, open(f'{DIR}/{name}/{meta_name}', 'w'), indent=2)
folder('base', hf, 'model.safetensors', config, 'config.json')
folder('merged', merged, 'model.safetensors', config, 'config.json')
folder('peft', adapters, 'adapter_model.safetensors',
       {'peft_type': 'LORA', 'r': R, 'lora_alpha': ALPHA, 'lora_dropout': 0.0,
        'target_modules': ['attn.c_attn', 'attn.c_proj'], 'fan_in_fan_out': True,
        'bias': 'none', 'modules_to_save': None, 'rank_pattern': {}, 'alpha_pattern': {},
        'use_dora': False, 'use_rslora': False, 'task_type': 'CAUSAL_LM',
        'base_model_name_or_path': 'gpt2'}, 'adapter_config.json')
save({'tokens': torch.randint(0, V, (2, 10))}, DIR + '/in.safetensors')
)";

// The LoRA that the PEFT folder's adapters need: every linear of the attention, rank 2, alpha 4.
const char* const kLora = " --set 'model.peft={type: lora, rank: 2, alpha: 4, targets: [attention]}'";

class PeftFolder : public SharedReferenceFolder<PeftFolder> {
 public:
  static const char* script() { return kWriter; }

 protected:
  // A copy of the PEFT folder with its config edited by `edit` and its tensors by `tensors`.
  static std::string edited(const std::string& name,
                            const std::function<void(nlohmann::json&)>& edit,
                            const std::function<void(std::map<std::string, at::Tensor>&)>&
                                tensors = {}) {
    const fs::path to = at(name);
    fs::create_directories(to);
    nlohmann::json config = nlohmann::json::parse(std::ifstream(at("peft/adapter_config.json")));
    edit(config);
    std::ofstream(to / "adapter_config.json") << config.dump(2);
    auto all = file_tensors(at("peft/adapter_model.safetensors"));
    if (tensors) tensors(all);
    weights::write_safetensors((to / "adapter_model.safetensors").string(),
                               {all.begin(), all.end()});
    return to.string();
  }

  static std::map<std::string, at::Tensor> file_tensors(const std::string& path) {
    const auto file = weights::SafetensorsFile::open(path);
    std::map<std::string, at::Tensor> out;
    for (const auto& info : file.tensors()) out[info.name] = file.tensor(info.name).clone();
    return out;
  }

  // The error of `blockc forward` with the base model and `adapters`.
  static std::string forward_error(const std::string& adapters) {
    const auto r = blockc("forward --model " + at("base") + kLora + " --adapters " + adapters +
                          " --input " + at("in.safetensors") + " --output " +
                          at("unused.safetensors"));
    EXPECT_EQ(r.code, 1) << r.err;
    return r.err;
  }
};

TEST_F(PeftFolder, MergedExportIsPeftsFormula) {
  const auto r = blockc("export --model " + at("base") + kLora + " --adapters " + at("peft") +
                        " --merge-adapters --to hf -o " + at("out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("merged the adapters of 8 linear layers"));
  const auto got = file_tensors(at("out/model.safetensors"));
  const auto want = file_tensors(at("merged/model.safetensors"));
  const auto base = file_tensors(at("base/model.safetensors"));
  size_t compared = 0;
  for (const auto& [name, tensor] : got) {
    ASSERT_TRUE(want.count(name)) << name;
    ASSERT_EQ(tensor.sizes(), want.at(name).sizes()) << name;
    EXPECT_LT((tensor - want.at(name)).abs().max().item<double>(), 1e-6) << name;
    if (!at::equal(want.at(name), base.at(name))) ++compared;
  }
  EXPECT_EQ(compared, 4u) << "c_attn and attn.c_proj of 2 layers carry a delta";
}

TEST_F(PeftFolder, UnmergedAdaptersComputeTheMergedModel) {
  const auto lora = blockc("forward --model " + at("base") + kLora + " --adapters " + at("peft") +
                           " --input " + at("in.safetensors") + " --output " + at("lora.st"));
  ASSERT_EQ(lora.code, 0) << lora.err;
  const auto merged = blockc("forward --model " + at("merged") + " --input " +
                             at("in.safetensors") + " --output " + at("merged.st"));
  ASSERT_EQ(merged.code, 0) << merged.err;
  const auto plain = blockc("forward --model " + at("base") + " --input " + at("in.safetensors") +
                            " --output " + at("plain.st"));
  ASSERT_EQ(plain.code, 0) << plain.err;
  const at::Tensor a = file_tensors(at("lora.st")).at("logits");
  const at::Tensor b = file_tensors(at("merged.st")).at("logits");
  const at::Tensor c = file_tensors(at("plain.st")).at("logits");
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
  EXPECT_GT((a - c).abs().max().item<double>(), 1e-2) << "the adapters change the logits";
}

// Written back, c_attn's shared A becomes the parts side by side (A stacked, B block-diagonal,
// rank 3 r and alpha 3 alpha in the patterns): the same delta, loaded into the same adapters.
TEST_F(PeftFolder, WrittenBackItLoadsToTheSameAdapters) {
  const auto r = blockc("export --model " + at("base") + kLora + " --adapters " + at("peft") +
                        " --adapters-only --to hf -o " + at("again"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto config = nlohmann::json::parse(std::ifstream(at("again/adapter_config.json")));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 2);
  EXPECT_EQ(config["lora_alpha"], 4.0);
  EXPECT_EQ(config["fan_in_fan_out"], true);
  EXPECT_EQ(config["base_model_name_or_path"], at("base"));
  EXPECT_EQ(config["rank_pattern"],
            nlohmann::json({{"transformer.h.0.attn.c_attn", 6}, {"transformer.h.1.attn.c_attn", 6}}));
  EXPECT_EQ(config["alpha_pattern"], nlohmann::json({{"transformer.h.0.attn.c_attn", 12.0},
                                                     {"transformer.h.1.attn.c_attn", 12.0}}));
  const auto original = file_tensors(at("peft/adapter_model.safetensors"));
  const auto written = file_tensors(at("again/adapter_model.safetensors"));
  ASSERT_EQ(written.size(), original.size());
  const std::string h = "base_model.model.transformer.h.0.attn.";
  EXPECT_TRUE(at::equal(written.at(h + "c_proj.lora_A.weight"), original.at(h + "c_proj.lora_A.weight")));
  EXPECT_TRUE(at::equal(written.at(h + "c_proj.lora_B.weight"), original.at(h + "c_proj.lora_B.weight")));
  const at::Tensor a = original.at(h + "c_attn.lora_A.weight");
  const at::Tensor b = original.at(h + "c_attn.lora_B.weight");
  EXPECT_TRUE(at::equal(written.at(h + "c_attn.lora_A.weight"), at::cat({a, a, a}, 0)));
  EXPECT_TRUE(at::equal(written.at(h + "c_attn.lora_B.weight"), at::block_diag(b.chunk(3, 0))));

  ASSERT_EQ(blockc("export --model " + at("base") + kLora + " --adapters " + at("peft") +
                   " --merge-adapters -o " + at("first.st")).code, 0);
  ASSERT_EQ(blockc("export --model " + at("base") + kLora + " --adapters " + at("again") +
                   " --merge-adapters -o " + at("second.st")).code, 0);
  const auto first = file_tensors(at("first.st")), second = file_tensors(at("second.st"));
  ASSERT_EQ(first.size(), second.size());
  for (const auto& [name, tensor] : first) EXPECT_TRUE(at::equal(tensor, second.at(name))) << name;
}

TEST_F(PeftFolder, WhatBlocksCannotComputeIsRefused) {
  const std::string file = "/adapter_config.json: ";
  std::string dir = edited("dora", [](auto& c) { c["use_dora"] = true; });
  EXPECT_THAT(forward_error(dir), HasSubstr(dir + file + "use_dora: DoRA's magnitude vectors are "
                                            "not LoRA; blocks does not compute them"));
  dir = edited("rslora", [](auto& c) { c["use_rslora"] = true; });
  EXPECT_THAT(forward_error(dir), HasSubstr(dir + file + "use_rslora: rank-stabilized scaling "
                                            "(alpha / sqrt(r)) differs from blocks' alpha / rank"));
  dir = edited("bias", [](auto& c) { c["bias"] = "lora_only"; });
  EXPECT_THAT(forward_error(dir), HasSubstr(dir + file + "bias is 'lora_only'; blocks' adapters "
                                            "train no biases (bias: none)"));
  dir = edited("ia3", [](auto& c) { c["peft_type"] = "IA3"; });
  EXPECT_THAT(forward_error(dir), HasSubstr(dir + file + "peft_type is 'IA3'; blocks computes "
                                            "LoRA adapters only (peft_type LORA)"));
}

TEST_F(PeftFolder, AdaptersThatDoNotFitAreListedTogether) {
  const std::string dir = edited(
      "misfit", [](auto& c) { c["alpha_pattern"] = {{"h.1.attn.c_attn", 8.0}}; },
      [](auto& t) {
        const std::string h = "base_model.model.transformer.h.";
        t.erase(h + "0.attn.c_proj.lora_A.weight");
        t.erase(h + "0.attn.c_proj.lora_B.weight");
        t[h + "0.mlp.c_fc.lora_A.weight"] = at::zeros({2, 32});
        t[h + "0.mlp.c_fc.lora_B.weight"] = at::zeros({128, 2});
      });
  const std::string err = forward_error(dir);
  EXPECT_THAT(err, HasSubstr(dir + ": the adapters do not fit the model:"));
  EXPECT_THAT(err, HasSubstr("decoder.0.mixer.output.lora_a (from "
                             "base_model.model.transformer.h.0.attn.c_proj.lora_A.weight)"));
  EXPECT_THAT(err, HasSubstr("base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight (the model "
                             "has no adapter on transformer.h.0.mlp.c_fc)"));
  EXPECT_THAT(err, HasSubstr("transformer.h.1.attn.c_attn: scale lora_alpha / r = 8.000000 / 2 "
                             "in " + dir + ", the model's alpha / rank = 4.000000 / 2"));
}

}  // namespace
}  // namespace blocks::testing
