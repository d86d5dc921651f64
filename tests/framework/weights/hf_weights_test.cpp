// Hugging Face checkpoints through the built-in name maps (framework/weights/hf_names.cpp): tiny
// HF-format folders written by an independent writer (Debian's python3-torch, HF names and
// layouts: GPT-2's Conv1D [in, out], fused c_attn, attn.bias buffers, Mixtral's per-expert
// tensors) load into models built from their config.json and match plain-PyTorch logits; export
// gives the original tensors back bit for bit; sharded folders, user YAML mappings and
// `blockc forward --model FOLDER` work; a bad checkpoint gives one report.
#include <gmock/gmock.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/hf/config.h"
#include "framework/hf/export_config.h"
#include "framework/hf/family.h"
#include "framework/hf/folder.h"
#include "framework/weights/hf_folder.h"
#include "framework/weights/mapping.h"
#include "tests/support/blockc_run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Python that writes `hf` (HF names and layouts) and config.json into `folder`, and the same
// tensors renamed and re-laid-out to blocks' names in `p` (its own renaming, not the C++ table).
const char* const kGpt2Writer = R"(
d, L, V, P, I, H = 64, 2, 100, 32, 256, 4
hf = {'transformer.wte.weight': r(V, d), 'transformer.wpe.weight': r(P, d)}
for i in range(L):
    h = f'transformer.h.{i}.'
    hf[h + 'ln_1.weight'], hf[h + 'ln_1.bias'] = 1 + r(d), r(d)
    hf[h + 'attn.bias'] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
    hf[h + 'attn.masked_bias'] = torch.tensor(-1e4)
    hf[h + 'attn.c_attn.weight'], hf[h + 'attn.c_attn.bias'] = r(d, 3 * d), r(3 * d)
    hf[h + 'attn.c_proj.weight'], hf[h + 'attn.c_proj.bias'] = r(d, d), r(d)
    hf[h + 'ln_2.weight'], hf[h + 'ln_2.bias'] = 1 + r(d), r(d)
    hf[h + 'mlp.c_fc.weight'], hf[h + 'mlp.c_fc.bias'] = r(d, I), r(I)
    hf[h + 'mlp.c_proj.weight'], hf[h + 'mlp.c_proj.bias'] = r(I, d), r(d)
hf['transformer.ln_f.weight'], hf['transformer.ln_f.bias'] = 1 + r(d), r(d)
config = {'model_type': 'gpt2', 'architectures': ['GPT2LMHeadModel'], 'vocab_size': V,
          'n_positions': P, 'n_embd': d, 'n_layer': L, 'n_head': H, 'n_inner': None,
          'activation_function': 'gelu_new', 'layer_norm_epsilon': 1e-5}
p = {'embeddings.word.weight': hf['transformer.wte.weight'],
     'embeddings.position.weight': hf['transformer.wpe.weight'],
     'head.normalization.weight': hf['transformer.ln_f.weight'],
     'head.normalization.bias': hf['transformer.ln_f.bias']}
for i in range(L):
    h, b = f'transformer.h.{i}.', f'decoder.{i}.'
    for part in ('weight', 'bias'):
        p[b + 'normalization.' + part] = hf[h + 'ln_1.' + part]
        p[b + 'mlp_normalization.' + part] = hf[h + 'ln_2.' + part]
    q, k, v = hf[h + 'attn.c_attn.weight'].t().chunk(3, 0)
    qb, kb, vb = hf[h + 'attn.c_attn.bias'].chunk(3, 0)
    p.update({b + 'mixer.query.weight': q, b + 'mixer.key.weight': k, b + 'mixer.value.weight': v,
              b + 'mixer.query.bias': qb, b + 'mixer.key.bias': kb, b + 'mixer.value.bias': vb,
              b + 'mixer.output.weight': hf[h + 'attn.c_proj.weight'].t(),
              b + 'mixer.output.bias': hf[h + 'attn.c_proj.bias'],
              b + 'mlp.up.weight': hf[h + 'mlp.c_fc.weight'].t(), b + 'mlp.up.bias': hf[h + 'mlp.c_fc.bias'],
              b + 'mlp.down.weight': hf[h + 'mlp.c_proj.weight'].t(),
              b + 'mlp.down.bias': hf[h + 'mlp.c_proj.bias']})
logits = gpt2(p, inputs['tokens'], layers=L, heads=H)
)";

// Llama (with QWEN, Qwen2: q/k/v biases; with EXPERTS, Mixtral: block_sparse_moe with per-expert
// w1/w3/w2, which `p` stacks to blocks' [experts, out, in] itself; with MISTRAL, Mistral: a
// sliding window of 4 tokens, shorter than the 10-token sample, in every layer).
const char* const kLlamaWriter = R"(
d, L, V, H, G, D, I = 64, 2, 100, 4, 2, 16, 96
hf = {'model.embed_tokens.weight': r(V, d)}
for i in range(L):
    l = f'model.layers.{i}.'
    hf[l + 'input_layernorm.weight'] = 1 + r(d)
    hf[l + 'self_attn.q_proj.weight'] = r(H * D, d)
    hf[l + 'self_attn.k_proj.weight'] = r(G * D, d)
    hf[l + 'self_attn.v_proj.weight'] = r(G * D, d)
    hf[l + 'self_attn.o_proj.weight'] = r(d, H * D)
    if QWEN:
        hf[l + 'self_attn.q_proj.bias'] = r(H * D)
        hf[l + 'self_attn.k_proj.bias'], hf[l + 'self_attn.v_proj.bias'] = r(G * D), r(G * D)
    hf[l + 'post_attention_layernorm.weight'] = 1 + r(d)
    if EXPERTS:
        hf[l + 'block_sparse_moe.gate.weight'] = r(EXPERTS, d)
        for e in range(EXPERTS):
            x = f'{l}block_sparse_moe.experts.{e}.'
            hf[x + 'w1.weight'], hf[x + 'w3.weight'], hf[x + 'w2.weight'] = r(I, d), r(I, d), r(d, I)
    else:
        hf[l + 'mlp.gate_proj.weight'], hf[l + 'mlp.up_proj.weight'] = r(I, d), r(I, d)
        hf[l + 'mlp.down_proj.weight'] = r(d, I)
hf['model.norm.weight'], hf['lm_head.weight'] = 1 + r(d), r(V, d)
config = {'model_type': 'mixtral' if EXPERTS else 'qwen2' if QWEN else 'mistral' if MISTRAL else 'llama',
          'hidden_size': d,
          'intermediate_size': I, 'num_hidden_layers': L, 'num_attention_heads': H,
          'num_key_value_heads': G, 'vocab_size': V, 'rms_norm_eps': 1e-5, 'rope_theta': 10000.0,
          'tie_word_embeddings': False, 'hidden_act': 'silu', 'max_position_embeddings': 128}
if EXPERTS:
    config.update({'num_local_experts': EXPERTS, 'num_experts_per_tok': 2})
if MISTRAL:
    config['sliding_window'] = 4
p = {'embeddings.word.weight': hf['model.embed_tokens.weight'],
     'head.normalization.weight': hf['model.norm.weight'], 'head.output.weight': hf['lm_head.weight']}
for i in range(L):
    l, b = f'model.layers.{i}.', f'decoder.{i}.'
    p[b + 'normalization.weight'] = hf[l + 'input_layernorm.weight']
    p[b + 'mlp_normalization.weight'] = hf[l + 'post_attention_layernorm.weight']
    for hn, bn in (('q', 'query'), ('k', 'key'), ('v', 'value'), ('o', 'output')):
        p[f'{b}mixer.{bn}.weight'] = hf[f'{l}self_attn.{hn}_proj.weight']
        if QWEN and hn != 'o':
            p[f'{b}mixer.{bn}.bias'] = hf[f'{l}self_attn.{hn}_proj.bias']
    if EXPERTS:
        p[b + 'mlp.router.weight'] = hf[l + 'block_sparse_moe.gate.weight']
        for hn, bn in (('w1', 'gate'), ('w3', 'up'), ('w2', 'down')):
            p[f'{b}mlp.{bn}.weight'] = torch.stack(
                [hf[f'{l}block_sparse_moe.experts.{e}.{hn}.weight'] for e in range(EXPERTS)])
    else:
        for n in ('gate', 'up', 'down'):
            p[f'{b}mlp.{n}.weight'] = hf[f'{l}mlp.{n}_proj.weight']
shape = dict(layers=L, heads=H, groups=G, head_size=D, theta=10000.0)
if EXPERTS:
    logits = mixtral(p, inputs['tokens'], experts=EXPERTS, top_k=config['num_experts_per_tok'],
                     **shape)
else:
    logits = llama(p, inputs['tokens'], window=4 if MISTRAL else None, **shape)
)";

// Gemma 1 in its Hugging Face names, head_dim 32 beside hidden 64 / 4 heads = 16, one key/value
// head, `hidden_act: gelu` as gemma-2b's config.json says (GemmaMLP computes the tanh GELU).
const char* const kGemmaWriter = R"(
d, L, V, H, G, D, I = 64, 2, 100, 4, 1, 32, 96
hf = {'model.embed_tokens.weight': r(V, d)}
for i in range(L):
    l = f'model.layers.{i}.'
    hf[l + 'input_layernorm.weight'] = r(d)
    hf[l + 'self_attn.q_proj.weight'] = r(H * D, d)
    hf[l + 'self_attn.k_proj.weight'] = r(G * D, d)
    hf[l + 'self_attn.v_proj.weight'] = r(G * D, d)
    hf[l + 'self_attn.o_proj.weight'] = r(d, H * D)
    hf[l + 'post_attention_layernorm.weight'] = r(d)
    hf[l + 'mlp.gate_proj.weight'], hf[l + 'mlp.up_proj.weight'] = r(I, d), r(I, d)
    hf[l + 'mlp.down_proj.weight'] = r(d, I)
hf['model.norm.weight'] = r(d)
config = {'model_type': 'gemma', 'architectures': ['GemmaForCausalLM'], 'hidden_size': d,
          'intermediate_size': I, 'num_hidden_layers': L, 'num_attention_heads': H,
          'num_key_value_heads': G, 'head_dim': D, 'vocab_size': V, 'rms_norm_eps': 1e-6,
          'rope_theta': 10000.0, 'hidden_act': 'gelu', 'max_position_embeddings': 128}
logits = gemma(hf, inputs['tokens'], layers=L, heads=H, groups=G, head_size=D, theta=10000.0)
)";

// Phi-3 in its Hugging Face names: fused qkv_proj and gate_up_proj, a sliding window of 6
// tokens over sequences of 10.
const char* const kPhi3Writer = R"(
d, L, V, H, I, W = 64, 2, 100, 4, 96, 6
hf = {'model.embed_tokens.weight': r(V, d)}
for i in range(L):
    l = f'model.layers.{i}.'
    hf[l + 'input_layernorm.weight'] = 1 + r(d)
    hf[l + 'self_attn.qkv_proj.weight'] = r(3 * d, d)
    hf[l + 'self_attn.o_proj.weight'] = r(d, d)
    hf[l + 'post_attention_layernorm.weight'] = 1 + r(d)
    hf[l + 'mlp.gate_up_proj.weight'] = r(2 * I, d)
    hf[l + 'mlp.down_proj.weight'] = r(d, I)
hf['model.norm.weight'], hf['lm_head.weight'] = 1 + r(d), r(V, d)
config = {'model_type': 'phi3', 'architectures': ['Phi3ForCausalLM'], 'hidden_size': d,
          'intermediate_size': I, 'num_hidden_layers': L, 'num_attention_heads': H,
          'num_key_value_heads': H, 'vocab_size': V, 'rms_norm_eps': 1e-5, 'rope_theta': 10000.0,
          'sliding_window': W, 'tie_word_embeddings': False, 'hidden_act': 'silu',
          'max_position_embeddings': 128, 'original_max_position_embeddings': 128,
          'resid_pdrop': 0.0, 'embd_pdrop': 0.0, 'rope_scaling': None}
logits = phi3(hf, inputs['tokens'], layers=L, heads=H, groups=H, theta=10000.0, window=W)
)";

struct Folder {
  fs::path dir;
  at::Tensor tokens, logits;  // logits: the plain-PyTorch reference's
};

at::Tensor sample_tokens() {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  return at::randint(0, 100, {2, 10}, generator, at::TensorOptions().dtype(at::kLong));
}

// This process's folder (unique, removed at exit): every file the tests write lies in it, so
// runs at once never share a name and nothing is left in /tmp.
const fs::path& scratch() {
  static const TempDir dir("hf_weights_test");
  return dir.path();
}

// Writes the family's folder once per process.
const Folder& folder(const std::string& family) {
  static std::map<std::string, Folder> made;
  if (auto it = made.find(family); it != made.end()) return it->second;
  Folder f;
  f.dir = scratch() / ("hf_" + family);
  f.tokens = sample_tokens();
  const std::string writer = family == "gpt2"    ? kGpt2Writer
                             : family == "gemma" ? kGemmaWriter
                             : family == "phi3"  ? kPhi3Writer
                                                 : kLlamaWriter;
  const std::string script =
      "import json, os\nfrom reference_models import gemma, gpt2, llama, mixtral, phi3\n"
      "torch.manual_seed(11)\n"
      "r = lambda *s: torch.randn(*s) * 0.2\nEXPERTS = " +
      std::string(family == "mixtral" ? "4" : "0") +
      "\nQWEN = " + (family == "qwen2" ? "True" : "False") +
      "\nMISTRAL = " + (family == "mistral" ? "True" : "False") + "\n" + writer + "os.makedirs('" +
      f.dir.string() +
      "', exist_ok=True)\n"
      "save(hf, '" +
      (f.dir / "model.safetensors").string() +
      "')\n"
      "json.dump(config, open('" +
      (f.dir / "config.json").string() +
      "', 'w'), indent=2)\n"
      "save({'logits': logits}, OUTPUT)\n";
  auto out = run_reference(script, {{"tokens", f.tokens}});
  f.logits = out.count("logits") ? out["logits"] : at::Tensor();
  return made[family] = f;
}

config::Document hf_document(const fs::path& dir) {
  config::Diagnostics diagnostics;
  auto yaml = hf::import_yaml(dir.string(), diagnostics);
  EXPECT_TRUE(yaml) << diagnostics.format();
  auto doc = config::load_document_text(yaml ? *yaml : "", (dir / "config.json").string(),
                                        registry(), diagnostics);
  EXPECT_TRUE(doc) << diagnostics.format();
  return std::move(*doc);
}

std::vector<std::pair<std::string, at::Tensor>> targets(const Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : model.parameters) out.emplace_back(p.name, p.tensor);
  return out;
}

// The model of `dir`, filled from `files` (default: the folder's checkpoint).
Model load_folder(const fs::path& dir, const weights::Mapping& mapping,
                  std::vector<std::string> files = {}) {
  const config::Document doc = hf_document(dir);
  Model model = build_model(*doc.model);
  if (files.empty()) files = weights::checkpoint_files(dir.string());
  weights::load_mapped(targets(model), files, mapping);
  model.module->eval();
  return model;
}

std::map<std::string, at::Tensor> file_tensors(const fs::path& path) {
  auto file = weights::SafetensorsFile::open(path.string());
  std::map<std::string, at::Tensor> out;
  for (const auto& info : file.tensors()) out[info.name] = file.tensor(info.name).clone();
  return out;
}

void expect_matches_reference(const std::string& family) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder(family);
  ASSERT_TRUE(f.logits.defined());
  Model model = load_folder(f.dir, weights::hf_mapping(family));
  c10::InferenceMode inference;
  EXPECT_TRUE(close(model.module->forward(f.tokens).logits, f.logits, 0, 2e-5));
}

TEST(HfWeights, Gpt2FolderMatchesReference) { expect_matches_reference("gpt2"); }
TEST(HfWeights, LlamaFolderMatchesReference) { expect_matches_reference("llama"); }
TEST(HfWeights, Qwen2FolderMatchesReference) { expect_matches_reference("qwen2"); }
TEST(HfWeights, MixtralFolderMatchesReference) { expect_matches_reference("mixtral"); }
TEST(HfWeights, GemmaFolderMatchesReference) { expect_matches_reference("gemma"); }
TEST(HfWeights, Phi3FolderMatchesReference) { expect_matches_reference("phi3"); }
// Mistral through the built-in name table (llama's names, the window from config.json). A
// reference without the window fails this test.
TEST(HfWeights, MistralFolderMatchesReference) { expect_matches_reference("mistral"); }

// The tensors of a Hugging Face folder (sharded or not), buffers ending in `buffers_end` left out.
std::map<std::string, at::Tensor> folder_tensors(const fs::path& dir,
                                                 const std::set<std::string>& buffers_end = {}) {
  std::map<std::string, at::Tensor> out;
  for (const auto& file : weights::checkpoint_files(dir.string()))
    for (auto& [name, t] : file_tensors(file)) {
      bool buffer = false;
      for (const auto& end : buffers_end)
        buffer |= name.size() >= end.size() &&
                  name.compare(name.size() - end.size(), end.size(), end) == 0;
      if (!buffer) out[name] = t;
    }
  return out;
}

void expect_same_tensors(const std::map<std::string, at::Tensor>& got,
                         const std::map<std::string, at::Tensor>& want) {
  std::vector<std::string> got_names, want_names;
  for (const auto& [name, t] : got) got_names.push_back(name);
  for (const auto& [name, t] : want) want_names.push_back(name);
  ASSERT_EQ(got_names, want_names);
  for (const auto& [name, t] : want) {
    EXPECT_EQ(got.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(at::equal(got.at(name), t)) << name << " differs";
  }
}

// HF -> blocks -> HF gives every original tensor back bit for bit (buffers are not parameters).
void expect_round_trip(const std::string& family, const std::set<std::string>& buffers_end) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder(family);
  const weights::Mapping& mapping = weights::hf_mapping(family);
  Model model = load_folder(f.dir, mapping);
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& p : model.parameters) named.emplace_back(p.name, p.tensor.detach());
  const fs::path out = f.dir.parent_path() / (f.dir.filename().string() + "_export.safetensors");
  weights::write_safetensors(out.string(), weights::export_mapped(named, mapping));
  expect_same_tensors(file_tensors(out), folder_tensors(f.dir, buffers_end));
}

// The library as a program linking blocks calls it (framework/hf/folder.h,
// framework/weights/hf_folder.h): the folder's document, its dtype, its weights through the
// family's table; then save_hf_folder writes the folder back bit for bit.
void expect_library_round_trip(const std::string& family) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder(family);
  config::Diagnostics diagnostics;
  auto doc = hf::folder_document(f.dir.string(), registry(), diagnostics);
  ASSERT_TRUE(doc) << diagnostics.format();
  const auto dtype = weights::checkpoint_dtype(weights::checkpoint_files(f.dir.string()));
  EXPECT_EQ(dtype, at::kFloat);
  Model model = build_model(*doc->model, at::TensorOptions().dtype(dtype));
  const auto report = weights::load_hf_folder(targets(model), f.dir.string());
  EXPECT_TRUE(report.ok()) << report.format();
  EXPECT_GT(report.loaded, 0);
  model.module->eval();
  {
    c10::InferenceMode inference;
    EXPECT_TRUE(close(model.module->forward(f.tokens).logits, f.logits, 0, 2e-5));
  }
  const auto config = hf::export_config(doc->dump(), family, diagnostics);
  ASSERT_TRUE(config) << diagnostics.format();
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& p : model.parameters) named.emplace_back(p.name, p.tensor.detach());
  const fs::path out = f.dir.parent_path() / (family + "_saved");
  EXPECT_EQ(weights::save_hf_folder(out.string(), *config, named, 20'000),
            folder_tensors(f.dir).size());
  EXPECT_GT(weights::checkpoint_files(out.string()).size(), 1u);  // sharded at 20 kB
  expect_same_tensors(folder_tensors(out), folder_tensors(f.dir));
  auto again = hf::folder_document(out.string(), registry(), diagnostics);
  ASSERT_TRUE(again) << diagnostics.format();
  EXPECT_EQ(again->dump(), doc->dump());
}

TEST(HfWeights, GemmaThroughTheLibrary) { expect_library_round_trip("gemma"); }
TEST(HfWeights, Phi3ThroughTheLibrary) { expect_library_round_trip("phi3"); }

TEST(HfWeights, Gpt2RoundTripIsBitIdentical) {
  expect_round_trip("gpt2", {".attn.bias", ".attn.masked_bias"});
}
TEST(HfWeights, LlamaRoundTripIsBitIdentical) { expect_round_trip("llama", {}); }
// Qwen2: Llama's names plus query/key/value biases.
TEST(HfWeights, Qwen2BiasesLoadAndRoundTrip) {
  expect_round_trip("qwen2", {});
  if (!have_reference_python()) return;
  const Folder& f = folder("qwen2");
  Model model = load_folder(f.dir, weights::hf_mapping("qwen2"));
  auto original = file_tensors(f.dir / "model.safetensors");
  int biases = 0;
  for (const auto& p : model.parameters)
    if (p.name == "decoder.0.mixer.key.bias") {
      ++biases;
      EXPECT_TRUE(at::equal(p.tensor, original["model.layers.0.self_attn.k_proj.bias"]));
    }
  EXPECT_EQ(biases, 1);
}
TEST(HfWeights, GemmaRoundTripIsBitIdentical) { expect_round_trip("gemma", {}); }
// Phi-3: qkv_proj splits into query, key and value, gate_up_proj into gate and up; export joins
// them again.
TEST(HfWeights, Phi3FusedTensorsSplitAndRoundTrip) {
  expect_round_trip("phi3", {});
  if (!have_reference_python()) return;
  const Folder& f = folder("phi3");
  Model model = load_folder(f.dir, weights::hf_mapping("phi3"));
  auto original = file_tensors(f.dir / "model.safetensors");
  const at::Tensor qkv = original["model.layers.1.self_attn.qkv_proj.weight"];
  const at::Tensor gate_up = original["model.layers.0.mlp.gate_up_proj.weight"];
  int checked = 0;
  for (const auto& p : model.parameters) {
    if (p.name == "decoder.1.mixer.key.weight") {
      ++checked;
      EXPECT_TRUE(at::equal(p.tensor, qkv.narrow(0, 64, 64)));
    }
    if (p.name == "decoder.0.mlp.up.weight") {
      ++checked;
      EXPECT_TRUE(at::equal(p.tensor, gate_up.narrow(0, 96, 96)));
    }
  }
  EXPECT_EQ(checked, 2);
}
TEST(HfWeights, MixtralExpertsStackAndRoundTrip) {
  expect_round_trip("mixtral", {});
  if (!have_reference_python()) return;
  const Folder& f = folder("mixtral");
  Model model = load_folder(f.dir, weights::hf_mapping("mixtral"));
  auto original = file_tensors(f.dir / "model.safetensors");
  for (const auto& p : model.parameters)
    if (p.name == "decoder.1.mlp.down.weight") {
      ASSERT_EQ(p.tensor.sizes(), (std::vector<int64_t>{4, 64, 96}));
      EXPECT_TRUE(
          at::equal(p.tensor[2], original["model.layers.1.block_sparse_moe.experts.2.w2.weight"]));
    }
}

// Two shards and model.safetensors.index.json load the same as the single file.
TEST(HfWeights, ShardedFolderLoadsTheSame) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder("gpt2");
  const fs::path dir = f.dir.parent_path() / (f.dir.filename().string() + "_sharded");
  fs::create_directories(dir);
  fs::copy_file(f.dir / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  auto file = weights::SafetensorsFile::open((f.dir / "model.safetensors").string());
  std::vector<std::pair<std::string, at::Tensor>> shard[2];
  config::Json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", config::Json::object()}};
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const auto& name = file.tensors()[i].name;
    const size_t s = i < file.tensors().size() / 2 ? 0 : 1;
    shard[s].emplace_back(name, file.tensor(name));
    index["weight_map"][name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
  }
  for (size_t s = 0; s < 2; ++s)
    weights::write_safetensors(
        (dir / ("model-0000" + std::to_string(s + 1) + "-of-00002.safetensors")).string(),
        shard[s]);
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
  ASSERT_EQ(weights::checkpoint_files(dir.string()).size(), 2u);
  Model sharded = load_folder(dir, weights::hf_mapping("gpt2"));
  Model single = load_folder(f.dir, weights::hf_mapping("gpt2"));
  ASSERT_EQ(sharded.parameters.size(), single.parameters.size());
  for (size_t i = 0; i < single.parameters.size(); ++i)
    EXPECT_TRUE(at::equal(sharded.parameters[i].tensor, single.parameters[i].tensor))
        << single.parameters[i].name;
}

// A missing and an extra tensor come in one report, before anything is copied.
TEST(HfWeights, MissingAndExtraTensorsInOneError) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder("gpt2");
  const fs::path dir = f.dir.parent_path() / (f.dir.filename().string() + "_broken");
  fs::create_directories(dir);
  fs::copy_file(f.dir / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  auto tensors = file_tensors(f.dir / "model.safetensors");
  tensors.erase("transformer.ln_f.bias");
  tensors["transformer.h.0.attn.extra.weight"] = at::zeros({3});
  tensors["transformer.h.1.mlp.c_fc.weight"] = at::zeros({64, 100});  // model: [256, 64]
  weights::write_safetensors((dir / "model.safetensors").string(),
                             {tensors.begin(), tensors.end()});
  const config::Document doc = hf_document(dir);
  Model model = build_model(*doc.model);
  try {
    weights::load_mapped(targets(model), weights::checkpoint_files(dir.string()),
                         weights::hf_mapping("gpt2"));
    FAIL() << "no error";
  } catch (const weights::LoadError& e) {
    EXPECT_THAT(e.report.missing, ::testing::ElementsAre("head.normalization.bias"));
    ASSERT_EQ(e.report.unexpected.size(), 1u);
    EXPECT_THAT(e.report.unexpected[0], HasSubstr("transformer.h.0.attn.extra.weight"));
    ASSERT_EQ(e.report.mismatched.size(), 1u);
    EXPECT_THAT(e.report.mismatched[0],
                HasSubstr("decoder.1.mlp.up.weight (from transformer.h.1.mlp.c_fc.weight): "
                          "checkpoint [100, 64], model [256, 64]"));
    EXPECT_THAT(e.what(), HasSubstr("head.normalization.bias"));
    EXPECT_THAT(e.what(), HasSubstr("transformer.h.0.attn.extra.weight"));
  }
  // Through blockc: exit 1, the same report.
  weights::write_safetensors((dir.parent_path() / "broken_in.safetensors").string(),
                             {{"tokens", f.tokens}});
  auto r = blockc("forward --model " + dir.string() + " --input " +
                  (dir.parent_path() / "broken_in.safetensors").string() + " --output " +
                  (dir.parent_path() / "broken_out.safetensors").string());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("head.normalization.bias"));
  EXPECT_THAT(r.err, HasSubstr("transformer.h.0.attn.extra.weight"));
}

// `blockc forward --model FOLDER` converts config.json, loads through the family's map and runs.
void expect_blockc_forward(const std::string& family) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder(family);
  const fs::path in = f.dir.parent_path() / (family + "_in.safetensors");
  const fs::path out = f.dir.parent_path() / (family + "_out.safetensors");
  weights::write_safetensors(in.string(), {{"tokens", f.tokens}});
  auto r = blockc("forward --model " + f.dir.string() + " --input " + in.string() + " --output " +
                  out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(
      close(weights::SafetensorsFile::open(out.string()).tensor("logits"), f.logits, 0, 2e-5));
}

TEST(HfWeights, BlockcForwardOnGpt2Folder) { expect_blockc_forward("gpt2"); }
TEST(HfWeights, BlockcForwardOnLlamaFolder) { expect_blockc_forward("llama"); }
TEST(HfWeights, BlockcForwardOnMixtralFolder) { expect_blockc_forward("mixtral"); }
TEST(HfWeights, BlockcForwardOnGemmaFolder) { expect_blockc_forward("gemma"); }
TEST(HfWeights, BlockcForwardOnPhi3Folder) { expect_blockc_forward("phi3"); }
TEST(HfWeights, BlockcForwardOnMistralFolder) { expect_blockc_forward("mistral"); }

// A user mapping in YAML: the same Llama names written by hand load the same weights.
TEST(HfWeights, YamlMappingFile) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder("llama");
  const fs::path path = f.dir.parent_path() / "llama_map.yaml";
  std::ofstream(path) << R"(rules:
  - {from: 'model\.embed_tokens\.weight', to: embeddings.word.weight}
  - {from: 'model\.layers\.(\d+)\.input_layernorm\.weight', to: decoder.$1.normalization.weight}
  - {from: 'model\.layers\.(\d+)\.post_attention_layernorm\.weight', to: decoder.$1.mlp_normalization.weight}
  - {from: 'model\.layers\.(\d+)\.self_attn\.q_proj\.weight', to: decoder.$1.mixer.query.weight}
  - {from: 'model\.layers\.(\d+)\.self_attn\.k_proj\.weight', to: [decoder.$1.mixer.key.weight]}
  - {from: 'model\.layers\.(\d+)\.self_attn\.v_proj\.weight', to: decoder.$1.mixer.value.weight}
  - {from: 'model\.layers\.(\d+)\.self_attn\.o_proj\.weight', to: decoder.$1.mixer.output.weight}
  - {from: 'model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight', to: decoder.$1.mlp.$2.weight}
  - {from: 'model\.norm\.weight', to: head.normalization.weight}
  - {from: 'lm_head\.weight', to: head.output.weight}
)";
  const weights::Mapping mapping = weights::load_mapping_file(path.string());
  EXPECT_EQ(mapping.rules.size(), 10u);
  Model by_yaml = load_folder(f.dir, mapping);
  Model built_in = load_folder(f.dir, weights::hf_mapping("llama"));
  for (size_t i = 0; i < built_in.parameters.size(); ++i)
    EXPECT_TRUE(at::equal(by_yaml.parameters[i].tensor, built_in.parameters[i].tensor))
        << built_in.parameters[i].name;

  // blockc forward --model YAML --weights HF_FILE --map FILE
  config::Diagnostics diagnostics;
  const fs::path yaml = f.dir.parent_path() / "llama_imported.yaml";
  std::ofstream(yaml) << *hf::import_yaml(f.dir.string(), diagnostics);
  const fs::path in = f.dir.parent_path() / "llama_map_in.safetensors";
  const fs::path out = f.dir.parent_path() / "llama_map_out.safetensors";
  weights::write_safetensors(in.string(), {{"tokens", f.tokens}});
  auto r = blockc("forward --model " + yaml.string() + " --weights " +
                  (f.dir / "model.safetensors").string() + " --map " + path.string() + " --input " +
                  in.string() + " --output " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(
      close(weights::SafetensorsFile::open(out.string()).tensor("logits"), f.logits, 0, 2e-5));

  std::ofstream(path) << "rules:\n  - {from: 'a', tu: b}\n";
  EXPECT_THROW(weights::load_mapping_file(path.string()), weights::MappingError);
}

// The resolved document of a folder's config.json, as `blockc import hf` reads it.
std::string resolved(const fs::path& dir) { return hf_document(dir).dump().dump(); }

// `blockc export --to hf` of a Hugging Face folder writes the folder back: its config.json
// converts to the same model and every tensor (buffers aside) is bit-identical.
void expect_cli_round_trip(const std::string& family, const std::set<std::string>& buffers_end) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder(family);
  const fs::path out = f.dir.parent_path() / (family + "_exported");
  auto r = blockc("export --model " + f.dir.string() + " --to hf -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_EQ(resolved(out), resolved(f.dir));
  const auto config = config::Json::parse(std::ifstream(out / "config.json"));
  EXPECT_EQ(config["model_type"], family);
  EXPECT_EQ(config["torch_dtype"], "float32");
  const auto original = config::Json::parse(std::ifstream(f.dir / "config.json"));
  for (const char* key : {"max_position_embeddings", "n_positions"})
    if (original.contains(key)) EXPECT_EQ(config[key], original[key]) << key;
  expect_same_tensors(folder_tensors(out), folder_tensors(f.dir, buffers_end));
  EXPECT_EQ(
      weights::SafetensorsFile::open((out / "model.safetensors").string()).metadata().at("format"),
      "pt");  // transformers refuses safetensors without it
}

TEST(HfWeights, BlockcExportGpt2FolderRoundTrip) {
  expect_cli_round_trip("gpt2", {".attn.bias", ".attn.masked_bias"});
}
TEST(HfWeights, BlockcExportLlamaFolderRoundTrip) { expect_cli_round_trip("llama", {}); }
TEST(HfWeights, BlockcExportQwen2FolderRoundTrip) { expect_cli_round_trip("qwen2", {}); }
TEST(HfWeights, BlockcExportMixtralFolderRoundTrip) { expect_cli_round_trip("mixtral", {}); }
TEST(HfWeights, BlockcExportGemmaFolderRoundTrip) { expect_cli_round_trip("gemma", {}); }
TEST(HfWeights, BlockcExportPhi3FolderRoundTrip) { expect_cli_round_trip("phi3", {}); }

// HF -> blocks' names (bfloat16) -> blocks' names again -> a sharded HF folder: the blocks files
// are bit-identical, the shards respect --max-shard-size, the dtype is kept, and the folder
// runs to the reference's logits (to bfloat16 precision).
TEST(HfWeights, BlockcExportThroughBlocksNamesToShards) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder("llama");
  const fs::path dir = f.dir.parent_path() / "llama_export_chain";
  fs::create_directories(dir);
  const std::string first = (dir / "first.safetensors").string();
  const std::string second = (dir / "second.safetensors").string();
  auto r = blockc("export --model " + f.dir.string() + " --dtype bfloat16 -o " + first);
  ASSERT_EQ(r.code, 0) << r.err;
  config::Diagnostics diagnostics;
  const fs::path yaml = dir / "llama.yaml";
  std::ofstream(yaml) << *hf::import_yaml(f.dir.string(), diagnostics);
  r = blockc("export --model " + yaml.string() + " --weights " + first + " -o " + second);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto a = file_tensors(first), b = file_tensors(second);
  expect_same_tensors(b, a);
  EXPECT_EQ(a.at("decoder.0.mixer.query.weight").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(weights::SafetensorsFile::open(second).metadata().count("blocks_config"));

  const fs::path sharded = dir / "sharded";
  r = blockc("export --model " + yaml.string() + " --weights " + second +
             " --to hf --max-shard-size 20KB -o " + sharded.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto index = config::Json::parse(std::ifstream(sharded / "model.safetensors.index.json"));
  const auto files = weights::checkpoint_files(sharded.string());
  EXPECT_GT(files.size(), 2u);
  int64_t total = 0;
  for (const auto& file : files) {
    const auto size = static_cast<int64_t>(fs::file_size(file));
    auto opened = weights::SafetensorsFile::open(file);
    // A shard holds at most 20 kB of data, or a single larger tensor.
    int64_t data = 0;
    for (const auto& info : opened.tensors()) data += int64_t(info.end - info.begin);
    EXPECT_TRUE(data <= 20000 || opened.tensors().size() == 1) << file << " " << size;
    total += data;
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), total);
  const auto config = config::Json::parse(std::ifstream(sharded / "config.json"));
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  EXPECT_FALSE(config.contains("max_position_embeddings"));  // a YAML source has none
  r = blockc("export --model " + yaml.string() + " --weights " + second +
             " --to hf --max-position-embeddings 4096 -o " + (dir / "with_context").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(config::Json::parse(
                std::ifstream(dir / "with_context" / "config.json"))["max_position_embeddings"],
            4096);
  std::map<std::string, at::Tensor> want;
  for (const auto& [name, t] : folder_tensors(f.dir)) want[name] = t.to(at::kBFloat16);
  expect_same_tensors(folder_tensors(sharded), want);

  // The sharded folder runs as the blocks file it came from (the same bfloat16 weights).
  const fs::path in = dir / "in.safetensors", out = dir / "out.safetensors",
                 direct = dir / "direct.safetensors";
  weights::write_safetensors(in.string(), {{"tokens", f.tokens}});
  r = blockc("forward --model " + sharded.string() + " --dtype float32 --input " + in.string() +
             " --output " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = blockc("forward --model " + yaml.string() + " --weights " + first +
             " --dtype float32 --input " + in.string() + " --output " + direct.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor logits = weights::SafetensorsFile::open(out.string()).tensor("logits");
  EXPECT_TRUE(at::equal(logits, weights::SafetensorsFile::open(direct.string()).tensor("logits")));
  EXPECT_FALSE(at::equal(logits, f.logits));  // bfloat16 weights: near, not equal
  EXPECT_TRUE(close(logits, f.logits, 0, 0.5));
}

TEST(HfWeights, BlockcExportRefusesAFamilyThatCannotHoldTheModel) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder("llama");
  const fs::path out = f.dir.parent_path() / "llama_as_gpt2";
  auto r =
      blockc("export --model " + f.dir.string() + " --to hf --model-type gpt2 -o " + out.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("error: model."));
  EXPECT_THAT(r.err, HasSubstr("the model cannot be written as a Hugging Face gpt2 config"));
  EXPECT_FALSE(fs::exists(out / "config.json"));
  r = blockc("export --model " + f.dir.string() + " --to hf --max-shard-size 5XB -o " +
             out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--max-shard-size: expected a size from 1B to 16EiB such as 5GB, "
                               "500MB or 2GiB, found '5XB'"));
}

// A tied Llama whose checkpoint still stores lm_head.weight (as some do): loaded when the tensor
// equals the embeddings, refused, naming both, when it does not.
TEST(HfWeights, TiedCheckpointWithItsOwnLmHead) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& f = folder("llama");
  auto tensors = folder_tensors(f.dir);
  auto config = config::Json::parse(std::ifstream(f.dir / "config.json"));
  config["tie_word_embeddings"] = true;
  const fs::path dir = f.dir.parent_path() / "llama_tied";
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << config.dump(2);
  auto write = [&](const at::Tensor& head) {
    tensors["lm_head.weight"] = head;
    std::vector<std::pair<std::string, at::Tensor>> list(tensors.begin(), tensors.end());
    weights::write_safetensors((dir / "model.safetensors").string(), list);
  };
  const at::Tensor embeddings = tensors.at("model.embed_tokens.weight");
  write(embeddings.clone());
  Model model = load_folder(dir, weights::hf_mapping("llama"));
  for (const auto& p : model.parameters) EXPECT_NE(p.name, "head.output.weight");
  write(embeddings + 1);
  try {
    load_folder(dir, weights::hf_mapping("llama"));
    FAIL() << "a head that differs from the tied embeddings loaded";
  } catch (const weights::LoadError& e) {
    EXPECT_THAT(e.report.mismatched,
                ::testing::ElementsAre("lm_head.weight (the model ties it to "
                                       "embeddings.word.weight): differs from "
                                       "model.embed_tokens.weight; untie the model's head to "
                                       "load both"));
  }
}

TEST(HfWeights, WeightsOfAnotherFamilyAreRefused) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  const Folder& llama = folder("llama");
  const Folder& gpt2 = folder("gpt2");
  const fs::path in = llama.dir.parent_path() / "family_in.safetensors";
  weights::write_safetensors(in.string(), {{"tokens", llama.tokens}});
  auto r = blockc("forward --model " + llama.dir.string() + " --weights " + gpt2.dir.string() +
                  " --input " + in.string() + " --output " +
                  (llama.dir.parent_path() / "family_out.safetensors").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "blockc: error: --weights " + gpt2.dir.string() +
                       " is a gpt2 checkpoint, the others llama\n");
}

// Import, export and name tables each list the families they know: they must list the same.
// Import also takes the composite types (llava, clip, clip_vision_model), whose names come from
// their parts.
TEST(HfWeights, EveryFamilyHasImportExportAndNames) {
  auto exported = hf::export_model_types();
  std::sort(exported.begin(), exported.end());
  EXPECT_EQ(exported, hf::families().names());
  EXPECT_EQ(weights::hf_mapping_names(), hf::families().names());
  const auto imported = hf::supported_model_types();
  for (const auto& family : hf::families().names())
    EXPECT_TRUE(std::count(imported.begin(), imported.end(), family)) << family;
}

TEST(HfWeights, UnknownFamilyListsTheKnownOnes) {
  try {
    weights::hf_mapping("bert");
    FAIL();
  } catch (const weights::MappingError& e) {
    EXPECT_THAT(e.what(), HasSubstr("(known: " + hf::family_list() + ")"));
  }
}

}  // namespace
}  // namespace blocks::testing
