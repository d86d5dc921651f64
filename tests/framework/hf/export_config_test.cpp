// Hugging Face config.json export: published configs and the zoo survive import -> export ->
// import unchanged, exported keys carry the published values, and models a family cannot
// express are refused with every reason.
#include "framework/hf/export_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "blocks/registry.h"
#include "framework/config/diff.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"
#include "framework/config/load.h"
#include "framework/hf/config.h"
#include "framework/hf/family.h"

namespace {

namespace config = blocks::config;
namespace hf = blocks::hf;
using config::Diagnostics;
using config::Json;

const std::string kFixtures = BLOCKS_SOURCE_DIR "/tests/fixtures/hf/";
const std::string kZoo = BLOCKS_SOURCE_DIR "/configs/";

config::Document load_text(const std::string& yaml, const std::string& name) {
  Diagnostics d;
  auto doc = config::load_document_text(yaml, name, blocks::registry(), d);
  if (!doc) throw std::runtime_error(name + ": " + d.format());
  return std::move(*doc);
}

// A blocks document (import_config's output) loaded and resolved.
config::Document resolve(const Json& document, const std::string& name) {
  return load_text(config::to_yaml(document), name);
}

config::Document zoo(const std::string& name) {
  Diagnostics d;
  auto doc = config::load_document(kZoo + name + ".yaml", blocks::registry(), d);
  if (!doc) throw std::runtime_error(name + ": " + d.format());
  return std::move(*doc);
}

config::Document imported(const std::string& fixture) {
  Diagnostics d;
  const auto json = hf::import_file(kFixtures + fixture, d);
  if (!json) throw std::runtime_error(fixture + ": " + d.format());
  return resolve(*json, fixture + ".yaml");
}

// An exported config.json read back by import_config and resolved.
config::Document reimported(const Json& exported) {
  Diagnostics d;
  const auto node = config::load_json(exported.dump(), "exported.json", d);
  const auto json = node ? hf::import_config(*node, d) : std::nullopt;
  if (!json) throw std::runtime_error("exported.json: " + d.format() + exported.dump(2));
  return resolve(*json, "reimported.yaml");
}

// Exports `document`; on failure the test fails with every diagnostic.
Json exported(const Json& document, const hf::ExportOptions& options) {
  Diagnostics d;
  const auto out = hf::export_config(document, options, d);
  EXPECT_TRUE(out) << d.format();
  EXPECT_EQ(d.format(), "");
  return out.value_or(Json());
}

Json exported(const Json& document, const std::string& model_type) {
  hf::ExportOptions options;
  options.model_type = model_type;
  return exported(document, options);
}

// Every reason an export fails for, "PATH: message" one a line; "" when it succeeds.
std::string refusals(const Json& document, const std::string& model_type) {
  Diagnostics d;
  const auto out = hf::export_config(document, model_type, d);
  EXPECT_EQ(out.has_value(), d.ok()) << "a config must come back exactly when nothing is wrong";
  std::string text;
  for (const auto& item : d.items()) {
    EXPECT_FALSE(item.mark.known()) << "a document in memory has no file positions";
    text += item.path + ": " + item.message + "\n";
  }
  return text;
}

// Architecture fields of each layer of `layered` (its block, or its override) that differ from
// the repeated block of `plain`, one a line.
std::string layer_differences(const config::Document& layered, const config::Document& plain) {
  std::map<std::string, Json> expected;
  for (const auto& leaf : config::leaves(plain)) expected[leaf.path] = leaf.value;
  const std::string overrides = "model.decoder.overrides.";
  std::string out;
  for (const auto& leaf : config::leaves(layered)) {
    if (leaf.hint != config::Hint::architecture) continue;
    std::string path = leaf.path;
    if (path.starts_with(overrides))  // overrides.N.X is layer N's X: compare with block.X
      path = "model.decoder.block" + path.substr(path.find('.', overrides.size()));
    if (expected[path] != leaf.value)
      out += leaf.path + ": " + leaf.value.dump() + " vs " + expected[path].dump() + "\n";
  }
  return out;
}

nlohmann::json read_fixture(const std::string& fixture) {
  std::ifstream in(kFixtures + fixture + "/config.json");
  return nlohmann::json::parse(in);
}

// A small Llama-style document, resolved: 4 layers, GQA, default rotary unless `mixer_extra`
// gives one. The extra lines go into the block (or, at 4 spaces, the decoder), its mixer and the
// model.
Json small(const std::string& block_extra = "", const std::string& mixer_extra = "",
           const std::string& model_extra = "") {
  const std::string rotary = mixer_extra.find("rotary:") == std::string::npos
                                 ? "        rotary: {type: default, theta: 10000.0}\n"
                                 : "";
  const std::string text =
      "version: 1\nmodel:\n  type: language_model\n  hidden_size: 64\n" + model_extra +
      "  embeddings: {vocab_size: 100}\n  decoder:\n    type: repeat\n    num_layers: 4\n"
      "    block:\n      type: transformer\n      mixer:\n        type: attention\n"
      "        heads: 4\n        head_groups: 2\n" +
      rotary + mixer_extra +
      "      mlp: {type: gated, intermediate_size: 128, activation: silu}\n"
      "      normalization: {type: rms_norm, epsilon: 1.0e-6}\n" +
      block_extra + "  head:\n    normalization: {type: rms_norm, epsilon: 1.0e-6}\n";
  return load_text(text, "small.yaml").dump();
}

struct Published {
  const char* fixture;
  const char* model_type;
  const char* first_fit =
      nullptr;  // the family an export without a model type picks; null: its own
};
const Published kPublished[] = {{"Meta-Llama-3-8B", "llama"},
                                {"Llama-3.1-8B", "llama"},
                                {"Mistral-7B-v0.1", "mistral"},
                                {"Mixtral-8x7B-v0.1", "mixtral"},
                                {"Qwen2.5-0.5B", "qwen2"},
                                {"gpt2", "gpt2"},
                                {"gemma-2b", "gemma"},
                                // Phi-3-mini's architecture is Mistral's (one window, no biases);
                                // the narrower family comes first.
                                {"Phi-3-mini-4k-instruct", "phi3", "mistral"}};

TEST(HfExportConfig, PublishedConfigsSurviveImportExportImport) {
  std::set<std::string> covered;
  for (const auto& [fixture, model_type, first_fit] : kPublished) {
    covered.insert(model_type);
    const config::Document before = imported(fixture);
    const Json json = exported(before.dump(), model_type);
    EXPECT_EQ(json["model_type"], model_type) << fixture;
    EXPECT_EQ(reimported(json).dump(), before.dump()) << fixture << "\n" << json.dump(2);
    // Without a model type, the first family that fits.
    const Json first = exported(before.dump(), "");
    EXPECT_EQ(first["model_type"], first_fit ? first_fit : model_type) << fixture;
    EXPECT_EQ(reimported(first).dump(), before.dump()) << fixture;
  }
  // Every registered family has a published config here.
  const auto names = hf::families().names();
  EXPECT_EQ(covered, std::set<std::string>(names.begin(), names.end()));
}

// Keys of the published files that a blocks model does not hold, and why.
const std::set<std::string> kNotArchitecture = {
    "bos_token_id",
    "eos_token_id",  // tokenizer
    "transformers_version",
    "use_cache",             // provenance, generation
    "pretraining_tp",        // Meta's tensor-parallel slicing: same products
    "output_router_logits",  // what forward returns
    "use_mrope",             // must be false to import; false is the default
    "summary_activation",
    "summary_first_dropout",
    "summary_proj_to_labels",
    "summary_type",
    "summary_use_proj",
    "task_specific_params",  // GPT2DoubleHeadsModel, generation presets
    "pad_token_id",          // tokenizer
    "auto_map",
    "_name_or_path"};  // where the Hub's remote code and the file came from

TEST(HfExportConfig, ExportedKeysCarryThePublishedValues) {
  for (const auto& [fixture, model_type, first_fit] : kPublished) {
    const nlohmann::json published = read_fixture(fixture);
    hf::ExportOptions options;
    options.model_type = model_type;
    options.torch_dtype = published.value("torch_dtype", "");
    if (published.contains("max_position_embeddings"))
      options.max_position_embeddings = published["max_position_embeddings"].get<int64_t>();
    const nlohmann::json out =
        nlohmann::json::parse(exported(imported(fixture).dump(), options).dump());
    std::vector<std::string> compared;
    for (const auto& [key, value] : published.items()) {
      if (kNotArchitecture.contains(key)) continue;
      // Qwen2 ignores sliding_window when use_sliding_window is false; so does the import.
      if (key == "sliding_window" && published.value("use_sliding_window", true) == false) continue;
      // GemmaMLP ignores hidden_act (gemma-2b says gelu, and computes the tanh GELU).
      if (key == "hidden_act" && std::string(model_type) == "gemma") {
        EXPECT_EQ(out[key], "gelu_pytorch_tanh");
        EXPECT_EQ(out["hidden_activation"], "gelu_pytorch_tanh");
        continue;
      }
      compared.push_back(key);
      ASSERT_TRUE(out.contains(key)) << fixture << ": " << key << " not exported";
      EXPECT_EQ(out[key], value) << fixture << ": " << key;
    }
    EXPECT_GE(compared.size(), 14u) << fixture;  // gpt2's 14 to Llama 3.1's 20
  }
}

TEST(HfExportConfig, ExportedKeysOfEachFamily) {
  const Json llama31 = exported(imported("Llama-3.1-8B").dump(), "llama");
  EXPECT_EQ(llama31["architectures"], Json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(llama31["rope_scaling"]["rope_type"], "llama3");
  EXPECT_FALSE(llama31.contains("head_dim"));                 // 4096 / 32
  EXPECT_FALSE(llama31.contains("max_position_embeddings"));  // not asked for
  EXPECT_FALSE(llama31.contains("torch_dtype"));

  const Json mixtral = exported(imported("Mixtral-8x7B-v0.1").dump(), "mixtral");
  EXPECT_EQ(mixtral["num_local_experts"], 8);
  EXPECT_EQ(mixtral["num_experts_per_tok"], 2);
  EXPECT_EQ(mixtral["router_aux_loss_coef"], 0.02);
  EXPECT_TRUE(mixtral["sliding_window"].is_null());

  const Json qwen = exported(imported("Qwen2.5-0.5B").dump(), "qwen2");
  EXPECT_EQ(qwen["use_sliding_window"], false);
  EXPECT_EQ(qwen["max_window_layers"], 24);
  EXPECT_FALSE(qwen.contains("attention_bias"));  // Qwen2's q, k, v biases are not a switch

  const Json gpt2 = exported(imported("gpt2").dump(), "gpt2");
  EXPECT_EQ(gpt2["architectures"], Json::array({"GPT2LMHeadModel"}));
  EXPECT_EQ(gpt2["n_inner"], 3072);
  EXPECT_EQ(gpt2["n_ctx"], 1024);
  EXPECT_EQ(gpt2["scale_attn_weights"], true);
  EXPECT_EQ(gpt2["resid_pdrop"], 0.1);
  EXPECT_FALSE(gpt2.contains("hidden_size"));  // GPT-2 says n_embd
}

TEST(HfExportConfig, ZooModelsSurviveExportImport) {
  const Published zoo_models[] = {{"llama3-8b", "llama"},
                                  {"llama3-70b", "llama"},
                                  {"mistral-7b", "mistral"},
                                  {"mixtral-8x7b", "mixtral"},
                                  {"gpt2", "gpt2"}};
  for (const auto& [name, model_type, first_fit] : zoo_models) {
    const config::Document before = zoo(name);
    const Json json = exported(before.dump(), "");
    EXPECT_EQ(json["model_type"], model_type) << name;
    EXPECT_EQ(reimported(json).dump(), before.dump()) << name;
  }
  // Learning-rate scales are training settings a config.json has no place for; the architecture
  // (per-layer overrides of lr_scale only) is a plain Llama.
  const config::Document scaled = zoo("per-layer-lr-scales");
  const Json json = exported(scaled.dump(), "");
  EXPECT_EQ(json["model_type"], "llama");
  EXPECT_EQ(layer_differences(scaled, reimported(json)), "");
}

// "model.decoder.block.PATH: WHAT has no Hugging Face FAMILY equivalent (WHY)\n".
std::string refusal(const std::string& path, const std::string& what, const std::string& family,
                    const std::string& why) {
  return path + ": " + what + " has no Hugging Face " + family + " equivalent (" + why + ")\n";
}

const std::string kBlock = "model.decoder.block.";
const std::string kQkvBiases =
    "        query: {bias: true}\n        key: {bias: true}\n        value: {bias: true}\n";

TEST(HfExportConfig, UnexpressibleZooModelsListEveryReason) {
  const Json custom = zoo("custom-init").dump();  // Sub-LN, xpos, LayerNorm, GELU MLP
  EXPECT_EQ(refusals(custom, "llama"),
            refusal(kBlock + "mixer.rotary", "xpos rotary", "llama",
                    "llama has default, llama3 and yarn rotary") +
                refusal(kBlock + "mlp.type", "MLP type mlp", "llama", "llama's MLP is gated") +
                refusal(kBlock + "normalization.type", "normalization type layer_norm", "llama",
                        "llama normalizes with rms_norm") +
                refusal(kBlock + "mlp_normalization.type", "normalization type layer_norm", "llama",
                        "llama normalizes with rms_norm") +
                refusal(kBlock + "normalization_placement", "sub-LN (normalization_placement sub)",
                        "llama", "llama normalizes the input of each branch: pre") +
                refusal("model.head.normalization.type", "normalization type layer_norm", "llama",
                        "llama normalizes with rms_norm"));
  EXPECT_EQ(refusals(custom, "gpt2"),
            refusal("model.embeddings.max_positions", "a model without learned positions", "gpt2",
                    "gpt2 adds a table of n_positions positions") +
                refusal(kBlock + "mixer.rotary", "xpos rotary", "gpt2",
                        "gpt2 has learned absolute positions, not rotary") +
                refusal(kBlock + "normalization_placement", "sub-LN (normalization_placement sub)",
                        "gpt2", "gpt2 normalizes the input of each branch: pre"));
  // Without a model type: the family with the fewest reasons, here GPT-2.
  EXPECT_EQ(refusals(custom, ""), refusals(custom, "gpt2"));

  EXPECT_EQ(refusals(zoo("hybrid-mamba-attention").dump(), "mixtral"),
            refusal("model.decoder.type", "a pattern decoder", "mixtral",
                    "its layers repeat one transformer block"));
  EXPECT_EQ(refusals(zoo("lora").dump(), "llama"),
            refusal("model.peft", "LoRA (peft lora)", "llama",
                    "merge the adapters into the base weights, or export the base model"));
  EXPECT_EQ(refusals(zoo("gpt2").dump(), "llama"),
            refusal("model.embeddings.max_positions", "a learned position table", "llama",
                    "llama has rotary positions only") +
                refusal("model.embeddings.dropout", "dropout 0.1 on the embeddings", "llama",
                        "llama has none there") +
                refusal(kBlock + "mixer.rotary", "attention without rotary positions", "llama",
                        "llama rotates queries and keys") +
                refusal(kBlock + "mlp.type", "MLP type mlp", "llama", "llama's MLP is gated") +
                refusal(kBlock + "normalization.type", "normalization type layer_norm", "llama",
                        "llama normalizes with rms_norm") +
                refusal(kBlock + "mlp_normalization.type", "normalization type layer_norm", "llama",
                        "llama normalizes with rms_norm") +
                refusal(kBlock + "dropout", "dropout 0.1 on the branch outputs", "llama",
                        "llama has none there") +
                refusal("model.head.normalization.type", "normalization type layer_norm", "llama",
                        "llama normalizes with rms_norm"));
  std::string biases;
  for (const char* linear : {"query", "key", "value", "output"})
    biases += refusal(kBlock + "mixer." + linear + ".bias",
                      std::string("the ") + linear + " projection without a bias", "gpt2",
                      "every gpt2 linear has one");
  EXPECT_EQ(refusals(zoo("llama3-8b").dump(), "gpt2"),
            refusal("model.embeddings.max_positions", "a model without learned positions", "gpt2",
                    "gpt2 adds a table of n_positions positions") +
                refusal(kBlock + "mixer.head_groups",
                        "grouped-query attention (8 key/value heads for 32 query heads)", "gpt2",
                        "gpt2 gives every query head its own key and value") +
                refusal(kBlock + "mixer.rotary", "default rotary", "gpt2",
                        "gpt2 has learned absolute positions, not rotary") +
                refusal(kBlock + "mlp.type", "MLP type gated", "gpt2", "gpt2's MLP is mlp") +
                refusal(kBlock + "normalization.type", "normalization type rms_norm", "gpt2",
                        "gpt2 normalizes with layer_norm") +
                refusal(kBlock + "mlp_normalization.type", "normalization type rms_norm", "gpt2",
                        "gpt2 normalizes with layer_norm") +
                biases +
                refusal("model.head.normalization.type", "normalization type rms_norm", "gpt2",
                        "gpt2 normalizes with layer_norm"));
}

TEST(HfExportConfig, MixerAndBlockFeaturesWithoutEquivalent) {
  const Json mamba =
      load_text(
          "version: 1\nmodel:\n  type: language_model\n  hidden_size: 64\n"
          "  embeddings: {vocab_size: 100}\n  decoder:\n    type: repeat\n    num_layers: 2\n"
          "    block:\n      type: transformer\n      mixer: {type: mamba}\n"
          "      mlp: {type: gated, intermediate_size: 128}\n      normalization: {type: "
          "rms_norm}\n"
          "  head:\n    normalization: {type: rms_norm}\n",
          "mamba.yaml")
          .dump();
  EXPECT_EQ(refusals(mamba, "llama"),
            refusal(kBlock + "mixer.type", "a mamba mixer", "llama", "llama layers use attention"));

  const Json odd =
      small("      normalization_placement: post\n      residual_scale: 2.0\n",
            "        causal: false\n        softmax_scale: 0.5\n        qk_norm: {type: rms_norm}\n"
            "        rotary: {type: default, theta: 10000.0, layout: interleaved}\n");
  EXPECT_EQ(refusals(odd, "llama"),
            refusal(kBlock + "mixer.rotary.layout", "the interleaved rotary layout", "llama",
                    "transformers rotates halves: permute the query and key weights and use "
                    "layout half") +
                refusal(kBlock + "mixer.causal", "bidirectional attention", "llama",
                        "a causal LM attends to earlier tokens only") +
                refusal(kBlock + "mixer.softmax_scale", "softmax_scale 0.5", "llama",
                        "llama scales the logits by 1 / sqrt(head_size) = 0.25") +
                refusal(kBlock + "mixer.qk_norm", "query/key normalization (rms_norm)", "llama",
                        "llama normalizes neither") +
                refusal(kBlock + "normalization_placement", "normalization_placement post", "llama",
                        "llama normalizes the input of each branch: pre") +
                refusal(kBlock + "residual_scale", "residual_scale 2.0", "llama",
                        "llama adds the residual unscaled"));

  const Json epsilons = small("      mlp_normalization: {type: rms_norm, epsilon: 1.0e-5}\n");
  EXPECT_EQ(refusals(epsilons, "mistral"),
            refusal(kBlock + "mlp_normalization.epsilon",
                    "epsilon 1e-05 beside 1e-06 in model.decoder.block.normalization", "mistral",
                    "mistral has one rms_norm_eps"));
}

TEST(HfExportConfig, BiasesFollowTheFamilySwitches) {
  // Llama: attention_bias and mlp_bias, each for its whole branch.
  const Json all = small("", "", "  add_linear_biases: true\n");
  const Json llama = exported(all, "llama");
  EXPECT_EQ(llama["attention_bias"], true);
  EXPECT_EQ(llama["mlp_bias"], true);
  EXPECT_EQ(reimported(llama).dump(), all);

  // Qwen2's q, k, v biases: not llama's (o has none), not mistral's (no biases), qwen2's.
  const Json qkv = small("", kQkvBiases);
  EXPECT_EQ(refusals(qkv, "llama"),
            refusal(kBlock + "mixer.output.bias",
                    "no bias on the output projection while the query projection has one", "llama",
                    "llama's attention_bias sets it for query, key, value, output alike"));
  std::string mistral;
  for (const char* linear : {"query", "key", "value"})
    mistral += refusal(kBlock + "mixer." + linear + ".bias",
                       std::string("a bias on the ") + linear + " projection", "mistral",
                       "mistral's linears have none");
  EXPECT_EQ(refusals(qkv, "mistral"), mistral);
  const Json qwen = exported(qkv, "");
  EXPECT_EQ(qwen["model_type"], "qwen2");
  EXPECT_EQ(reimported(qwen).dump(), qkv);
  EXPECT_EQ(refusals(all, "qwen2"),
            refusal(kBlock + "mixer.output.bias", "a bias on the output projection", "qwen2",
                    "qwen2 has biases on query, key and value only") +
                refusal(kBlock + "mlp.gate.bias", "a bias on the gate projection", "qwen2",
                        "qwen2 has biases on query, key and value only") +
                refusal(kBlock + "mlp.up.bias", "a bias on the up projection", "qwen2",
                        "qwen2 has biases on query, key and value only") +
                refusal(kBlock + "mlp.down.bias", "a bias on the down projection", "qwen2",
                        "qwen2 has biases on query, key and value only"));
}

// Windows of a 4-layer model: `block` for the repeated block, `overrides` by layer; with Qwen2's
// q, k, v biases when `qwen`.
Json windowed(const std::string& block, const std::string& overrides, bool qwen = false) {
  return small(
      overrides.empty() ? "" : "    overrides:\n" + overrides,
      (block.empty() ? "" : "        window_size: " + block + "\n") + (qwen ? kQkvBiases : ""));
}

TEST(HfExportConfig, SlidingWindows) {
  const std::string slide = "        mixer: {window_size: 16}\n";
  const std::string full = "        mixer: {window_size: null}\n";

  // Every layer: mistral (llama has no window); auto picks mistral.
  const Json every = windowed("16", "");
  EXPECT_EQ(refusals(every, "llama"),
            refusal(kBlock + "mixer.window_size", "a sliding window of 16 tokens", "llama",
                    "llama attends to every earlier token; mistral and qwen2 have windows"));
  const Json mistral = exported(every, "");
  EXPECT_EQ(mistral["model_type"], "mistral");
  EXPECT_EQ(mistral["sliding_window"], 16);
  EXPECT_EQ(reimported(mistral).dump(), every);
  const Json qwen_every = exported(windowed("16", "", true), "qwen2");
  EXPECT_EQ(qwen_every["max_window_layers"], 0);
  EXPECT_EQ(qwen_every["use_sliding_window"], true);

  // Layers 2 and 3: Qwen2's max_window_layers.
  const Json upper = windowed("", "      2: {mixer: {window_size: 16}}\n      3:\n" + slide);
  EXPECT_EQ(refusals(upper, "mistral"),
            refusal("model.decoder.overrides.2.mixer.window_size",
                    "layer 2's window 16 beside layer 0's null", "mistral",
                    "mistral has one sliding_window for every layer; qwen2 varies it by layer") +
                refusal("model.decoder.overrides.3.mixer.window_size",
                        "layer 3's window 16 beside layer 0's null", "mistral",
                        "mistral has one sliding_window for every layer; qwen2 varies it by "
                        "layer"));
  const Json qwen_upper =
      windowed("", "      2: {mixer: {window_size: 16}}\n      3:\n" + slide, true);
  const Json qwen = exported(qwen_upper, "");
  EXPECT_EQ(qwen["model_type"], "qwen2");
  EXPECT_EQ(qwen["use_sliding_window"], true);
  EXPECT_EQ(qwen["sliding_window"], 16);
  EXPECT_EQ(qwen["max_window_layers"], 2);
  EXPECT_FALSE(qwen.contains("layer_types"));
  EXPECT_EQ(reimported(qwen).dump(), qwen_upper);

  // Any other set of layers: layer_types.
  const Json scattered = windowed("16", "      1:\n" + full + "      2:\n" + full, true);
  const Json types = exported(scattered, "");
  EXPECT_EQ(types["model_type"], "qwen2");
  EXPECT_EQ(types["layer_types"], Json::array({"sliding_attention", "full_attention",
                                               "full_attention", "sliding_attention"}));
  EXPECT_EQ(reimported(types).dump(), scattered);

  // Two window sizes: no family.
  const Json two = windowed("16", "      3: {mixer: {window_size: 32}}\n", true);
  EXPECT_EQ(refusals(two, "qwen2"), refusal("model.decoder.overrides.3.mixer.window_size",
                                            "layer 3's window 32 beside layer 0's 16", "qwen2",
                                            "qwen2 has one sliding_window size"));
}

TEST(HfExportConfig, OverridesMayChangeTheWindowOnly) {
  const Json heads = windowed("", "      1: {mixer: {window_size: 16, heads: 8}}\n", true);
  const std::string why = "qwen2's layers differ in their sliding window only";
  EXPECT_EQ(refusals(heads, "qwen2"),
            refusal("model.decoder.overrides.1.mixer.heads", "8 in layer 1 beside 4 in the others",
                    "qwen2", why) +
                refusal("model.decoder.overrides.1.mixer.head_size",
                        "8 in layer 1 beside 16 in the others", "qwen2", why) +
                refusal("model.decoder.overrides.1.mixer.softmax_scale",
                        "0.35355339059327373 in layer 1 beside 0.25 in the others", "qwen2", why));
}

TEST(HfExportConfig, HeadSizeAndScale) {
  // head_dim only when it is not hidden_size / heads.
  const Json wide = small("", "        head_size: 32\n");
  const Json llama = exported(wide, "llama");
  EXPECT_EQ(llama["head_dim"], 32);
  EXPECT_EQ(reimported(llama).dump(), wide);
  EXPECT_FALSE(exported(small(), "llama").contains("head_dim"));

  // GPT-2 without the 1 / sqrt(head_size) scaling: scale_attn_weights false.
  const Json unscaled =
      load_text(config::to_yaml(
                    Json::parse(std::string(R"({"version": 1, "model": {"type": "language_model",
        "hidden_size": 64, "add_linear_biases": true, "embeddings": {"vocab_size": 100,
        "max_positions": 32}, "decoder": {"type": "repeat", "num_layers": 2, "block": {"type":
        "transformer", "mixer": {"type": "attention", "heads": 4, "softmax_scale": 1.0}, "mlp":
        {"type": "mlp", "activation": "gelu_tanh"}, "normalization": {"type": "layer_norm"}}},
        "head": {"normalization": {"type": "layer_norm"}, "tied": true}}})"))),
                "unscaled.yaml")
          .dump();
  const Json out = exported(unscaled, "");
  EXPECT_EQ(out["model_type"], "gpt2");
  EXPECT_EQ(out["scale_attn_weights"], false);
  EXPECT_EQ(out["activation_function"], "gelu_new");
  EXPECT_EQ(out["n_inner"], 256);
  EXPECT_EQ(reimported(out).dump(), unscaled);
}

TEST(HfExportConfig, UnknownFieldsAndTypesAreRefused) {
  // A field the export does not read could change the model: refused, never dropped.
  Json extra = small();
  extra["model"]["decoder"]["block"]["mixer"]["new_switch"] = true;
  EXPECT_EQ(refusals(extra, "llama"),
            kBlock +
                "mixer.new_switch: not a field the Hugging Face export knows; it may change "
                "the architecture, so it is not dropped\n");
  // A document that is not resolved says so.
  const std::string unresolved = refusals(Json::parse(R"({"version": 1, "model": {"type":
    "language_model", "hidden_size": 64}})"),
                                          "llama");
  EXPECT_TRUE(unresolved.starts_with(
      "model.embeddings.vocab_size: expected an integer, found nothing; export_config reads a "
      "resolved document (Document::dump())\n"))
      << unresolved;
  EXPECT_EQ(refusals(small(), "falcon"),
            "model_type: cannot export to model_type 'falcon' (supported: " +
                config::join(hf::export_model_types()) + ")\n");
  // Every registered family, the narrowest first: a plain Llama is not written as a Mistral
  // without a window, nor a Mistral as a Phi-3 (which adds resid_pdrop).
  auto order = hf::export_model_types();
  const auto at = [&](const std::string& name) {
    return std::find(order.begin(), order.end(), name) - order.begin();
  };
  for (const auto& [narrow, wide] : {std::pair{"gpt2", "llama"}, {"llama", "mistral"},
                                     {"mistral", "qwen2"}, {"qwen2", "mixtral"},
                                     {"mistral", "phi3"}, {"llama", "gemma"}})
    EXPECT_LT(at(narrow), at(wide)) << narrow << " before " << wide;
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, hf::families().names());
}

// What gemma and phi3 cannot say (family files' Limit and capabilities).
TEST(HfExportConfig, GemmaAndPhi3Refusals) {
  const std::string why = "gemma's RMSNorm scales by 1.0 + weight";
  EXPECT_EQ(
      refusals(small(), "gemma"),
      refusal("model.embeddings.scale", "embedding scale 1.0", "gemma",
              "gemma multiplies the embeddings by sqrt(hidden_size) = 8.0") +
          refusal(kBlock + "normalization.weight_offset", "weight_offset 0.0", "gemma", why) +
          refusal(kBlock + "mlp_normalization.weight_offset", "weight_offset 0.0", "gemma", why) +
          refusal("model.head.normalization.weight_offset", "weight_offset 0.0", "gemma", why));
  EXPECT_EQ(refusals(small(), "phi3"),
            refusal(kBlock + "mixer.head_groups", "2 key/value heads for 4 query heads", "phi3",
                    "blocks' phi3 name table splits the fused qkv_proj in equal thirds, so key "
                    "and value need as many heads as the query"));
  EXPECT_EQ(refusals(small("",
                           "        rotary: {type: yarn, theta: 10000.0, scale_factor: 4.0, "
                           "original_context_length: 1024}\n"),
                     "phi3"),
            refusal(kBlock + "mixer.rotary", "yarn rotary", "phi3", "phi3 has default rotary") +
                refusal(kBlock + "mixer.head_groups", "2 key/value heads for 4 query heads", "phi3",
                        "blocks' phi3 name table splits the fused qkv_proj in equal thirds, so "
                        "key and value need as many heads as the query"));
}

// YaRN goes out as rope_scaling {rope_type: yarn, ...} and reads back the same.
TEST(HfExportConfig, YarnRoundTrip) {
  const std::string rotary =
      "        rotary: {type: yarn, theta: 1000000.0, scale_factor: 4.0, "
      "original_context_length: 32768, beta_fast: 16.0, beta_slow: 2.0, attention_factor: 1.25}\n";
  for (const char* family : {"llama", "mistral", "qwen2"}) {
    const bool qwen = std::string(family) == "qwen2";
    const Json document = small("", rotary + (qwen ? kQkvBiases : ""));
    const Json out = exported(document, family);
    EXPECT_EQ(out["rope_theta"], 1e6) << family;
    EXPECT_EQ(out["rope_scaling"], Json({{"attention_factor", 1.25},
                                         {"beta_fast", 16.0},
                                         {"beta_slow", 2.0},
                                         {"factor", 4.0},
                                         {"original_max_position_embeddings", 32768},
                                         {"rope_type", "yarn"}}))
        << family;
    EXPECT_EQ(reimported(out).dump(), document) << family;
  }
}

TEST(HfExportConfig, OptionsAddDtypeAndContextLength) {
  hf::ExportOptions options;
  options.model_type = "llama";
  options.torch_dtype = "bfloat16";
  options.max_position_embeddings = 8192;
  const Json out = exported(small(), options);
  EXPECT_EQ(out["torch_dtype"], "bfloat16");
  EXPECT_EQ(out["max_position_embeddings"], 8192);
  EXPECT_EQ(reimported(out).dump(), small());  // neither changes the architecture
}

}  // namespace

namespace {

// ---- LLaVA ---------------------------------------------------------------------------------
hf::ExportOptions llava_options() {
  hf::ExportOptions options;
  options.resolve = [](const Json& document, Diagnostics& d) {
    return config::load_document_text(config::to_yaml(document), "config.json",
                                      blocks::registry(), d);
  };
  return options;
}

// llava-1.5-7b.yaml exports as llava-hf/llava-1.5-7b-hf's config.json states it (the keys its
// header lists), and that file imports back to the same model.
TEST(HfExportConfig, LlavaZooConfigIsTheHubOne) {
  const Json original = zoo("llava-1.5-7b").dump();
  const Json out = exported(original, llava_options());
  EXPECT_EQ(out["model_type"], "llava");
  EXPECT_EQ(out["image_token_index"], 32000);
  EXPECT_EQ(out["image_seq_length"], 576);
  EXPECT_EQ(out["vision_feature_layer"], -2);
  EXPECT_EQ(out["vision_feature_select_strategy"], "default");
  EXPECT_EQ(out["projector_hidden_act"], "gelu");
  EXPECT_EQ(out["multimodal_projector_bias"], true);
  EXPECT_EQ(out["vision_config"].dump(),
            Json::parse(R"({"hidden_act": "quick_gelu", "hidden_size": 1024, "image_size": 336,
                "intermediate_size": 4096, "layer_norm_eps": 1e-05, "model_type": "clip_vision_model",
                "num_attention_heads": 16, "num_channels": 3, "num_hidden_layers": 24,
                "patch_size": 14})")
                .dump());  // keys sorted, as transformers writes them
  const Json& text = out["text_config"];
  EXPECT_EQ(text["model_type"], "llama");
  EXPECT_EQ(text["hidden_size"], 4096);
  EXPECT_EQ(text["intermediate_size"], 11008);
  EXPECT_EQ(text["num_hidden_layers"], 32);
  EXPECT_EQ(text["vocab_size"], 32064);
  EXPECT_EQ(reimported(out).dump()["model"], original["model"]);
}

// KOSMOS-1 is no LLaVA: every reason at its path; a language model is no llava either.
TEST(HfExportConfig, FusionModelsLlavaCannotHoldAreRefused) {
  Diagnostics d;
  EXPECT_FALSE(hf::export_config(zoo("kosmos-1").dump(), llava_options(), d));
  std::string text;
  for (const auto& item : d.items()) text += item.path + ": " + item.message + "\n";
  const std::string tail = " (Hugging Face llava cannot hold it)\n";
  // The decoder's reasons are those of the family nearest to it, below model.decoder.
  EXPECT_EQ(text,
            "model.begin_tokens: tokens around each image" + tail +
                "model.end_tokens: tokens around each image" + tail +
                "model.fusion_vocab_size: a fusion embedding (token rows after the vocabulary)" +
                tail + "model.encoders.image.connectors: connectors other than one `mlp` projector" +
                tail +
                refusal("model.decoder.embeddings.max_positions",
                        "a model without learned positions", "gpt2",
                        "gpt2 adds a table of n_positions positions") +
                refusal("model.decoder.decoder.block.mixer.rotary", "xpos rotary", "gpt2",
                        "gpt2 has learned absolute positions, not rotary") +
                refusal("model.decoder.decoder.block.normalization_placement",
                        "sub-LN (normalization_placement sub)", "gpt2",
                        "gpt2 normalizes the input of each branch: pre"));
  Diagnostics lm;
  hf::ExportOptions options = llava_options();
  options.model_type = "llava";
  EXPECT_FALSE(hf::export_config(zoo("llama3-8b").dump(), options, lm));
  ASSERT_EQ(lm.items().size(), 1u);
  EXPECT_EQ(lm.items()[0].path + ": " + lm.items()[0].message,
            "model.type: a llava config.json holds an early_fusion model, found 'language_model'");
}

// What the keys cannot say comes back different, and is refused by the read-back: a post-norm
// LLaVA would not apply, a causal tower.
TEST(HfExportConfig, LlavaReadBackRefusesWhatNoKeyHolds) {
  config::LoadOptions load;
  load.sets = {"model.encoders.image.encoder.post_normalization={type: layer_norm}",
               "model.encoders.image.encoder.body.block.mixer.causal=true"};
  Diagnostics dl;
  auto doc = config::load_document(kZoo + "llava-1.5-7b.yaml", blocks::registry(), dl, load);
  ASSERT_TRUE(doc) << dl.format();
  Diagnostics d;
  EXPECT_FALSE(hf::export_config(doc->dump(), llava_options(), d));
  const std::string text = d.format();
  EXPECT_NE(text.find("model: Hugging Face llava would load a different model"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n  model.encoders.image.encoder.body.block.mixer.causal: model true, "
                      "checkpoint false"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n  model.encoders.image.encoder.post_normalization"), std::string::npos)
      << text;
  // Without a resolver the export cannot check, so it refuses.
  Diagnostics none;
  EXPECT_FALSE(hf::export_config(zoo("llava-1.5-7b").dump(), hf::ExportOptions{}, none));
  ASSERT_EQ(none.items().size(), 1u);
  EXPECT_EQ(none.items()[0].message,
            "a llava export needs ExportOptions::resolve to check its config.json");
}

}  // namespace
