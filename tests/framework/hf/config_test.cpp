// Hugging Face config.json import: the published configs in tests/fixtures/hf convert to blocks
// documents with the published parameter counts and the zoo's architecture; every problem of a
// file is reported at its position; `blockc import hf` writes a file `blockc validate` accepts.
#include "framework/hf/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "framework/config/diff.h"
#include "framework/config/emit.h"
#include "framework/config/load.h"
#include "framework/config/parameters.h"
#include "framework/hf/family.h"
#include "framework/hf/mllama.h"
#include "tests/support/blockc_run.h"
#include "tests/support/model_text.h"

namespace {

namespace config = blocks::config;
namespace hf = blocks::hf;
namespace bt = blocks::testing;
using config::Diagnostics;
using config::Json;

const std::string kFixtures = BLOCKS_SOURCE_DIR "/tests/fixtures/hf/";

// A published config converted, then loaded and resolved by the project's own loader.
config::Document imported(const std::string& fixture) {
  Diagnostics d;
  const auto json = hf::import_file(kFixtures + fixture, d);
  if (!json) throw std::runtime_error(fixture + ": " + d.format());
  return bt::document(config::to_yaml(*json), fixture + ".yaml");
}

int64_t parameters(const std::string& fixture) {
  return config::count_parameters(*imported(fixture).model).total;
}

// config.json text converted; `errors` receives every formatted diagnostic.
std::optional<Json> convert(const std::string& text, std::string* errors = nullptr) {
  Diagnostics d;
  const auto hf = config::load_json(text, "config.json", d);
  std::optional<Json> doc = hf ? hf::import_config(*hf, d) : std::nullopt;
  EXPECT_EQ(doc.has_value(), d.ok()) << d.format();
  if (errors) *errors = d.format();
  return doc;
}

const Json& mixer(const Json& doc) { return doc["model"]["decoder"]["block"]["mixer"]; }
const Json& mlp(const Json& doc) { return doc["model"]["decoder"]["block"]["mlp"]; }

// A Llama-style decoder's parameters from its config numbers: token embeddings; per layer q, o
// [hidden, hidden], k, v [hidden, kv_heads * head_size] (plus their biases), gate, up, down and
// two RMSNorm weights; the final norm; an output matrix unless tied.
int64_t llama_style(int64_t vocab, int64_t hidden, int64_t intermediate, int64_t layers,
                    int64_t heads, int64_t kv_heads, bool qkv_bias, bool tied) {
  const int64_t kv = kv_heads * (hidden / heads);
  const int64_t attention =
      2 * hidden * hidden + 2 * hidden * kv + (qkv_bias ? hidden + 2 * kv : 0);
  const int64_t layer = attention + 3 * hidden * intermediate + 2 * hidden;
  return vocab * hidden * (tied ? 1 : 2) + layers * layer + hidden;
}

TEST(HfConfig, PublishedParameterCounts) {
  EXPECT_EQ(parameters("Meta-Llama-3-8B"), 8'030'261'248);
  EXPECT_EQ(parameters("Mistral-7B-v0.1"), 7'241'732'096);
  EXPECT_EQ(parameters("Mixtral-8x7B-v0.1"), 46'702'792'704);
  EXPECT_EQ(parameters("gpt2"), 124'439'808);
  EXPECT_EQ(parameters("gemma-2b"), 2'506'172'416);
  EXPECT_EQ(parameters("Phi-3-mini-4k-instruct"), 3'821'079'552);
}

TEST(HfConfig, CountsFollowTheConfigNumbers) {
  // Llama 3.1 8B changes only the rotary scaling of Llama 3 8B.
  EXPECT_EQ(parameters("Llama-3.1-8B"),
            llama_style(128256, 4096, 14336, 32, 32, 8, /*qkv_bias=*/false, /*tied=*/false));
  EXPECT_EQ(parameters("Llama-3.1-8B"), 8'030'261'248);
  // Qwen2.5 0.5B: q, k, v biases and a tied head; 494,032,768 as transformers counts it.
  EXPECT_EQ(parameters("Qwen2.5-0.5B"),
            llama_style(151936, 896, 4864, 24, 14, 2, /*qkv_bias=*/true, /*tied=*/true));
  EXPECT_EQ(parameters("Qwen2.5-0.5B"), 494'032'768);
}

// The imported documents and the hand-written zoo configs differ in no architecture field.
TEST(HfConfig, SameArchitectureAsTheZoo) {
  const std::pair<const char*, const char*> pairs[] = {{"Meta-Llama-3-8B", "llama3-8b"},
                                                       {"Mistral-7B-v0.1", "mistral-7b"},
                                                       {"Mixtral-8x7B-v0.1", "mixtral-8x7b"},
                                                       {"gpt2", "gpt2"},
                                                       {"Llama-3.2-11B-Vision",
                                                        "llama-3.2-11b-vision"}};
  for (const auto& [fixture, zoo] : pairs) {
    std::string architecture;
    for (const auto& d : config::diff(imported(fixture), bt::zoo(zoo)))
      if (d.hint == config::Hint::architecture)
        architecture += d.path + ": " + d.before.dump() + " vs " + d.after.dump() + "\n";
    EXPECT_EQ(architecture, "") << fixture << " vs configs/" << zoo << ".yaml";
  }
}

TEST(HfConfig, ConvertedFields) {
  Diagnostics d;
  const Json mistral = *hf::import_file(kFixtures + "Mistral-7B-v0.1", d);
  EXPECT_EQ(mixer(mistral)["window_size"], 4096);
  EXPECT_EQ(mixer(mistral)["rotary"], Json({{"type", "default"}, {"theta", 10000.0}}));

  const Json mixtral = *hf::import_file(kFixtures + "Mixtral-8x7B-v0.1/config.json", d);
  EXPECT_FALSE(mixer(mixtral).contains("window_size"));  // sliding_window null
  EXPECT_EQ(mlp(mixtral)["type"], "moe");
  EXPECT_EQ(mlp(mixtral)["experts"], 8);
  EXPECT_EQ(mlp(mixtral)["top_k"], 2);
  EXPECT_EQ(mlp(mixtral)["aux_loss_coefficient"], 0.02);
  EXPECT_EQ(mlp(mixtral)["normalize_top_k"], true);

  const Json llama31 = *hf::import_file(kFixtures + "Llama-3.1-8B", d);
  EXPECT_EQ(mixer(llama31)["rotary"], Json({{"type", "llama3"},
                                            {"theta", 500000.0},
                                            {"scale_factor", 8.0},
                                            {"low_frequency_factor", 1.0},
                                            {"high_frequency_factor", 4.0},
                                            {"original_context_length", 8192}}));

  // Qwen2 has biases on q, k and v, none on o; the resolved tree says so for every linear.
  const Json qwen = imported("Qwen2.5-0.5B").dump();
  const Json& q = bt::block_of(qwen)["mixer"];
  for (const char* linear : {"query", "key", "value"}) EXPECT_EQ(q[linear]["bias"], true) << linear;
  EXPECT_EQ(q["output"]["bias"], false);
  EXPECT_EQ(bt::block_of(qwen)["mlp"]["up"]["bias"], false);
  EXPECT_EQ(qwen["model"]["head"]["tied"], true);
  EXPECT_TRUE(q.at("window_size").is_null());  // use_sliding_window false
  EXPECT_EQ(d.format(), "");
}

// Gemma 1 (configuration_gemma.py, modeling_gemma.py): gemma-2b's config.json says
// `hidden_act: gelu`, which GemmaMLP ignores: without hidden_activation it is the tanh GELU; it
// omits tie_word_embeddings, whose GemmaConfig default is true.
TEST(HfConfig, GemmaFollowsTransformers) {
  Diagnostics d;
  const Json gemma = *hf::import_file(kFixtures + "gemma-2b", d);
  ASSERT_EQ(d.format(), "");
  const Json& model = gemma["model"];
  EXPECT_EQ(mlp(gemma)["activation"], "gelu_tanh");
  EXPECT_EQ(mlp(gemma)["type"], "gated");
  EXPECT_EQ(model["head"]["tied"], true);
  EXPECT_DOUBLE_EQ(model["embeddings"]["scale"].get<double>(), std::sqrt(2048.0));
  EXPECT_EQ(model["decoder"]["block"]["normalization"]["weight_offset"], 1.0);
  EXPECT_EQ(model["head"]["normalization"]["weight_offset"], 1.0);
  EXPECT_EQ(mixer(gemma)["head_size"], 256);
  EXPECT_EQ(mixer(gemma)["head_groups"], 1);

  // hidden_activation decides; head_dim need not be hidden_size / heads.
  const auto exact = convert(R"({"model_type": "gemma", "hidden_activation": "gelu",
    "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32})");
  ASSERT_TRUE(exact);
  EXPECT_EQ(mlp(*exact)["activation"], "gelu");
  EXPECT_EQ(mixer(*exact)["head_size"], 32);
  // Without head_dim, GemmaConfig's 256, not hidden_size / heads.
  EXPECT_EQ(mixer(*convert(R"({"model_type": "gemma", "hidden_size": 64})"))["head_size"], 256);
  std::string errors;
  EXPECT_FALSE(convert(R"({"model_type": "gemma", "use_bidirectional_attention": true})", &errors));
  EXPECT_EQ(errors,
            "config.json:1:56: error: hf.use_bidirectional_attention: bidirectional attention "
            "(EmbeddingGemma) is not a causal language model (found 'true'; only false "
            "converts)\n");
}

// Phi-3 (configuration_phi3.py): the Llama block with a sliding window (2047 for
// Phi-3-mini-4k) and resid_pdrop; partial rotary and unequal key/value heads are refused.
TEST(HfConfig, Phi3FollowsTransformers) {
  Diagnostics d;
  const Json phi3 = *hf::import_file(kFixtures + "Phi-3-mini-4k-instruct", d);
  ASSERT_EQ(d.format(), "");
  EXPECT_EQ(mixer(phi3)["window_size"], 2047);
  EXPECT_EQ(mixer(phi3)["head_groups"], 32);
  EXPECT_EQ(mixer(phi3)["rotary"], Json({{"type", "default"}, {"theta", 10000.0}}));
  EXPECT_EQ(phi3["model"]["head"]["tied"], false);
  EXPECT_FALSE(phi3["model"]["decoder"]["block"].contains("dropout"));  // resid_pdrop 0.0

  const auto dropped = convert(R"({"model_type": "phi3", "resid_pdrop": 0.1})");
  ASSERT_TRUE(dropped);
  EXPECT_EQ((*dropped)["model"]["decoder"]["block"]["dropout"], 0.1);
  std::string errors;
  EXPECT_FALSE(convert(R"({"model_type": "phi3", "partial_rotary_factor": 0.5,
    "num_key_value_heads": 8})",
                       &errors));
  EXPECT_EQ(errors,
            "config.json:1:49: error: hf.partial_rotary_factor: rotary on a fraction of each "
            "head is not supported (found 0.5; only 1.0 converts)\n"
            "config.json:2:28: error: hf.num_key_value_heads: 8 key/value heads for 32 query "
            "heads: blocks' phi3 name table splits the fused qkv_proj in equal thirds, so key "
            "and value need as many heads as the query\n");
}

// YaRN (transformers' _compute_yarn_parameters) for the families whose rotary goes through
// rope_init_fns: beta_fast 32 and beta_slow 1 when absent, attention_factor as given.
TEST(HfConfig, YarnRopeScaling) {
  for (const char* family : {"llama", "mistral", "qwen2", "mixtral", "gemma"}) {
    const auto doc = convert(std::string(R"({"model_type": ")") + family +
                             R"(", "rope_theta": 1e6, "rope_scaling": {"rope_type": "yarn",
      "factor": 4.0, "original_max_position_embeddings": 32768}})");
    ASSERT_TRUE(doc) << family;
    EXPECT_EQ(mixer(*doc)["rotary"], Json({{"type", "yarn"},
                                           {"theta", 1e6},
                                           {"scale_factor", 4.0},
                                           {"original_context_length", 32768},
                                           {"beta_fast", 32.0},
                                           {"beta_slow", 1.0}}))
        << family;
  }
  const auto given = convert(R"({"model_type": "qwen2", "rope_scaling": {"type": "yarn",
    "factor": 2.0, "original_max_position_embeddings": 4096, "beta_fast": 16, "beta_slow": 2,
    "attention_factor": 1.5}})");
  ASSERT_TRUE(given);
  EXPECT_EQ(mixer(*given)["rotary"]["beta_fast"], 16.0);
  EXPECT_EQ(mixer(*given)["rotary"]["beta_slow"], 2.0);
  EXPECT_EQ(mixer(*given)["rotary"]["attention_factor"], 1.5);
  bt::document(config::to_yaml(*given));  // valid

  std::string errors;
  EXPECT_FALSE(convert(R"({"model_type": "llama", "rope_scaling": {"rope_type": "yarn",
    "mscale": 1.0}})",
                       &errors));
  EXPECT_EQ(errors,
            "config.json:1:41: error: hf.rope_scaling: rope type yarn needs 'factor'\n"
            "config.json:1:41: error: hf.rope_scaling: rope type yarn needs "
            "'original_max_position_embeddings'\n"
            "config.json:2:5: error: hf.rope_scaling.mscale: not a rope parameter blocks "
            "converts (its rotary types are default, llama3 and yarn)\n");
  EXPECT_FALSE(convert(R"({"model_type": "llama", "rope_scaling": {"beta_fast": 8}})", &errors));
  EXPECT_EQ(errors,
            "config.json:1:42: error: hf.rope_scaling.beta_fast: has no meaning for rope type "
            "default\n");
}

TEST(HfConfig, MissingKeysTakeTheTransformersDefaults) {
  const auto llama = convert(R"({"model_type": "llama"})");
  ASSERT_TRUE(llama);
  EXPECT_EQ(mixer(*llama)["head_groups"], 32);  // num_key_value_heads null: heads
  EXPECT_EQ(mlp(*llama)["intermediate_size"], 11008);
  EXPECT_EQ((*llama)["model"]["head"]["normalization"]["epsilon"], 1e-6);
  EXPECT_EQ((*llama)["model"]["head"]["tied"], false);
  EXPECT_EQ(mixer(*convert(R"({"model_type": "mistral"})"))["window_size"], 4096);
  // GPT2Config's defaults are GPT-2 small, tied head included.
  const auto gpt2 = convert(R"({"model_type": "gpt2"})");
  ASSERT_TRUE(gpt2);
  EXPECT_EQ(config::count_parameters(*bt::document(config::to_yaml(*gpt2)).model).total,
            124'439'808);
}

TEST(HfConfig, Qwen2SlidingWindowLayers) {
  const std::string base = R"({"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
    "sliding_window": 16, )";
  // Layers from max_window_layers on slide: per-layer overrides of the repeated block.
  auto doc = convert(base + R"("use_sliding_window": true, "max_window_layers": 2})");
  ASSERT_TRUE(doc);
  EXPECT_FALSE(mixer(*doc).contains("window_size"));
  const Json window = {{"mixer", {{"window_size", 16}}}};
  EXPECT_EQ((*doc)["model"]["decoder"]["overrides"], Json({{"2", window}, {"3", window}}));
  const Json resolved = bt::document(config::to_yaml(*doc)).dump();
  EXPECT_EQ(resolved["model"]["decoder"]["overrides"]["3"]["mixer"]["window_size"], 16);
  EXPECT_TRUE(resolved["model"]["decoder"]["block"]["mixer"]["window_size"].is_null());

  doc = convert(base + R"("use_sliding_window": true, "max_window_layers": 0})");
  EXPECT_EQ(mixer(*doc)["window_size"], 16);
  EXPECT_FALSE((*doc)["model"]["decoder"].contains("overrides"));

  doc = convert(base + R"("use_sliding_window": false, "max_window_layers": 0})");
  EXPECT_FALSE(mixer(*doc).contains("window_size"));

  doc = convert(base + R"("use_sliding_window": true, "layer_types": ["sliding_attention",
    "full_attention", "full_attention", "sliding_attention"]})");
  EXPECT_EQ(mixer(*doc)["window_size"], 16);
  const Json full = {{"mixer", {{"window_size", nullptr}}}};
  EXPECT_EQ((*doc)["model"]["decoder"]["overrides"], Json({{"1", full}, {"2", full}}));
  bt::document(config::to_yaml(*doc));  // valid
}

TEST(HfConfig, Gpt2Switches) {
  auto doc = convert(R"({"model_type": "gpt2", "scale_attn_weights": false, "n_inner": null,
                         "n_embd": 64, "n_head": 4, "activation_function": "relu"})");
  ASSERT_TRUE(doc);
  EXPECT_EQ(mixer(*doc)["softmax_scale"], 1.0);
  EXPECT_EQ(mlp(*doc)["intermediate_size"], 256);
  EXPECT_EQ(mlp(*doc)["activation"], "relu");
  EXPECT_EQ((*doc)["model"]["add_linear_biases"], true);

  std::string errors;
  EXPECT_FALSE(convert(R"({"model_type": "gpt2", "scale_attn_by_inverse_layer_idx": true,
    "add_cross_attention": true})",
                       &errors));
  EXPECT_EQ(errors,
            "config.json:1:59: error: hf.scale_attn_by_inverse_layer_idx: scaling attention by "
            "1 / (layer + 1) is not supported (found 'true'; only false converts)\n"
            "config.json:2:28: error: hf.add_cross_attention: cross-attention to an encoder is "
            "not supported (found 'true'; only false converts)\n");
}

TEST(HfConfig, ActivationsMapToBlocksNames) {
  const std::pair<const char*, const char*> cases[] = {{"silu", "silu"},
                                                       {"swish", "silu"},
                                                       {"gelu", "gelu"},
                                                       {"gelu_new", "gelu_tanh"},
                                                       {"gelu_pytorch_tanh", "gelu_tanh"},
                                                       {"relu2", "squared_relu"},
                                                       {"quick_gelu", "quick_gelu"}};
  for (const auto& [hf_name, blocks_name] : cases) {
    const auto doc =
        convert(std::string(R"({"model_type": "llama", "hidden_act": ")") + hf_name + "\"}");
    ASSERT_TRUE(doc) << hf_name;
    EXPECT_EQ(mlp(*doc)["type"], "gated");
    EXPECT_EQ(mlp(*doc)["activation"], blocks_name) << hf_name;
  }
  std::string errors;
  EXPECT_FALSE(convert(R"({"model_type": "llama", "hidden_act": "elu"})", &errors));
  EXPECT_NE(errors.find("config.json:1:39: error: hf.hidden_act: activation 'elu' has no "
                        "blocks equivalent (supported: gelu, "),
            std::string::npos)
      << errors;
}

TEST(HfConfig, UnknownKeyIsOneErrorAtItsPosition) {
  std::string errors;
  EXPECT_FALSE(convert(R"({
  "model_type": "mistral",
  "sliding_windows": 4096,
  "rms_norm_eps": 1e-05
})",
                       &errors));
  EXPECT_EQ(errors,
            "config.json:3:3: error: hf.sliding_windows: not a known mistral key; it may change "
            "the architecture, so it is not dropped; did you mean 'sliding_window'?\n");
  // A key another family converts is still unknown here: Llama has no sliding window.
  EXPECT_FALSE(convert(R"({"model_type": "llama", "sliding_window": 4096})", &errors));
  EXPECT_EQ(errors,
            "config.json:1:25: error: hf.sliding_window: not a known llama key; it may change the "
            "architecture, so it is not dropped\n");
}

TEST(HfConfig, EveryProblemOfAFileIsReported) {
  std::string errors;
  EXPECT_FALSE(convert(R"({
  "architectures": ["LlamaForSequenceClassification"],
  "model_type": "llama",
  "hidden_size": "4096",
  "num_attention_heads": 0,
  "tie_word_embeddings": "no",
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0},
  "layer_norm_epsilon": 1e-05
})",
                       &errors));
  EXPECT_EQ(errors,
            "config.json:2:21: error: hf.architectures: 'LlamaForSequenceClassification' is not a "
            "causal language model (...ForCausalLM, GPT2LMHeadModel); blocks would give it an LM "
            "head it does not have\n"
            "config.json:4:18: error: hf.hidden_size: expected an integer, found the quoted string "
            "\"4096\"\n"
            "config.json:5:26: error: hf.num_attention_heads: must be >= 1, found 0\n"
            "config.json:6:26: error: hf.tie_word_embeddings: expected true or false, found the "
            "quoted string \"no\"\n"
            "config.json:7:19: error: hf.rope_scaling: rope type llama3 needs 'low_freq_factor'\n"
            "config.json:7:19: error: hf.rope_scaling: rope type llama3 needs 'high_freq_factor'\n"
            "config.json:7:19: error: hf.rope_scaling: rope type llama3 needs "
            "'original_max_position_embeddings'\n"
            "config.json:8:3: error: hf.layer_norm_epsilon: not a known llama key; it may change "
            "the architecture, so it is not dropped\n");
}

// Values each key accepts alone but no model can have (issue 11, item 15): import refused them
// only after writing a YAML that `blockc validate` rejects. Now each is an error at its key.
TEST(HfConfig, ValuesNoModelCanHaveAreErrorsAtTheirKeys) {
  std::string errors;
  EXPECT_FALSE(convert(R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
  "num_attention_heads": 4,
  "num_key_value_heads": 8,
  "head_dim": 15,
  "rms_norm_eps": -1e-05,
  "rope_theta": -10000.0,
  "rope_scaling": {"rope_type": "yarn", "factor": -4.0, "original_max_position_embeddings": 64}
})",
                       &errors));
  EXPECT_EQ(errors,
            "config.json:5:26: error: hf.num_key_value_heads: 8 key/value heads must divide the 4 "
            "attention heads\n"
            "config.json:6:15: error: hf.head_dim: rotary embeddings need an even head size, found "
            "15\n"
            "config.json:7:19: error: hf.rms_norm_eps: must be greater than 0, found -1e-05\n"
            "config.json:8:17: error: hf.rope_theta: the rotary base must be greater than 0, found "
            "-10000\n"
            "config.json:9:19: error: hf.rope_scaling.factor: must be at least 1, found -4\n");
}

TEST(HfConfig, UnsupportedRopeTypesAreErrors) {
  for (const char* type : {"linear", "dynamic", "longrope"}) {
    std::string errors;
    EXPECT_FALSE(convert(std::string(R"({"model_type": "qwen2", "rope_scaling": {"type": ")") +
                             type + R"(", "factor": 4.0}})",
                         &errors));
    EXPECT_EQ(errors, std::string("config.json:1:50: error: hf.rope_scaling.type: rope type '") +
                          type +
                          "' is not supported (qwen2 converts default, llama3 and yarn); plain "
                          "rotary would change the model\n");
  }
  // Phi3Config reads yarn (and su) as longrope, whose per-frequency factors blocks cannot say.
  std::string errors;
  EXPECT_FALSE(convert(
      R"({"model_type": "phi3", "rope_scaling": {"type": "yarn", "factor": 4.0,
          "original_max_position_embeddings": 4096}})",
      &errors));
  EXPECT_EQ(errors,
            "config.json:1:49: error: hf.rope_scaling.type: rope type 'yarn' is not supported "
            "(phi3 converts default); plain rotary would change the model\n");
  // transformers 5 writes rope_parameters, theta inside; it converts like rope_scaling.
  const auto doc = convert(
      R"({"model_type": "llama", "rope_parameters": {"rope_type": "default", "rope_theta": 5e5}})");
  ASSERT_TRUE(doc);
  EXPECT_EQ(mixer(*doc)["rotary"], Json({{"type", "default"}, {"theta", 500000.0}}));
}

TEST(HfConfig, UnknownModelTypeListsTheSupportedOnes) {
  std::string errors;
  EXPECT_FALSE(convert(R"({"model_type": "falcon", "hidden_size": 64})", &errors));
  EXPECT_EQ(errors,
            "config.json:1:16: error: hf.model_type: unsupported model_type 'falcon' (supported: " +
                config::join(hf::supported_model_types()) + ")\n");
  // The families, and the composite types built of them or of a CLIP tower.
  std::vector<std::string> expected = hf::families().names();
  for (const char* composite : {"clip", "clip_vision_model", "llava", "mllama"})
    expected.push_back(composite);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(hf::supported_model_types(), expected);
  EXPECT_EQ(hf::family_list(), config::join(hf::families().names()));
  const auto names = hf::families().names();
  ASSERT_GE(names.size(), 7u);  // gemma, gpt2, llama, mistral, mixtral, phi3, qwen2 at least
  EXPECT_TRUE(hf::family_list(" or ").ends_with(", " + names[names.size() - 2] + " or " +
                                                names.back()));
  EXPECT_FALSE(convert(R"([1, 2])", &errors));
  EXPECT_EQ(errors, "config.json:1:1: error: hf: a config.json holds an object, found a list\n");
}

// blockc import hf DIR -o FILE writes a file blockc validate accepts.
TEST(HfConfig, BlockcRoundTrip) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hf_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "llama31.yaml").string();
  auto r = bt::blockc("import hf " + kFixtures + "Llama-3.1-8B -o " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::ifstream in(out);
  std::string first;
  std::getline(in, first);
  // A temporary folder has no schemas/ above it: no $schema line.
  EXPECT_EQ(first, "# Imported by `blockc import hf` from " + kFixtures + "Llama-3.1-8B");
  r = bt::blockc("validate " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");

  // To stdout without -o; errors exit 1 with their positions; usage errors exit 2.
  r = bt::blockc("import hf " + kFixtures + "gpt2/config.json");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("      mlp:\n        type: mlp\n"), std::string::npos) << r.out;
  const std::string bad = (dir / "config.json").string();
  std::ofstream(bad) << "{\"model_type\": \"llama\", \"rope_theta\": true}\n";
  r = bt::blockc("import hf " + dir.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, bad + ":1:39: error: hf.rope_theta: expected a number, found 'true'\n");
  EXPECT_EQ(bt::blockc("import hf").code, 2);
  EXPECT_EQ(bt::blockc("import").code, 2);
  std::filesystem::remove_all(dir);
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The $schema line is relative from the written file's folder to the nearest
// schemas/blocks.schema.json above it (the yaml-language-server resolves it from the file).
TEST(HfConfig, SchemaLineFollowsTheOutputFile) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("hf_schema_test_" + std::to_string(::getpid()));
  fs::create_directories(dir / "schemas");
  fs::create_directories(dir / "configs" / "imported");
  std::ofstream(dir / "schemas" / "blocks.schema.json") << "{}\n";
  const std::string source = kFixtures + "gpt2";
  for (const auto& [out, schema] :
       {std::pair{dir / "top.yaml", std::string("schemas/blocks.schema.json")},
        {dir / "configs" / "gpt2.yaml", "../schemas/blocks.schema.json"},
        {dir / "configs" / "imported" / "gpt2.yaml", "../../schemas/blocks.schema.json"}}) {
    EXPECT_EQ(hf::schema_reference(out.string()), schema);
    auto r = bt::blockc("import hf " + source + " -o " + out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(first_line(out.string()), "# yaml-language-server: $schema=" + schema);
    // The reference resolves from the file's folder to the schema.
    EXPECT_TRUE(fs::is_regular_file(out.parent_path() / schema)) << out;
  }
  // A relative -o resolves against the working directory (the repo root for the tests).
  EXPECT_EQ(hf::schema_reference("configs/imported.yaml"), "../schemas/blocks.schema.json");
  EXPECT_EQ(hf::schema_reference("imported.yaml"), "schemas/blocks.schema.json");
  // Nowhere below a schemas/ folder, and stdout: no line.
  fs::remove_all(dir / "schemas");
  EXPECT_EQ(hf::schema_reference((dir / "configs" / "gpt2.yaml").string()), std::nullopt);
  auto r = bt::blockc("import hf " + source);
  EXPECT_TRUE(r.out.starts_with("# Imported by `blockc import hf` from ")) << r.out;
  fs::remove_all(dir);
}

}  // namespace

namespace {

// An mllama config.json with `text` replacing parts of a small text_config and `top` added.
std::string mllama(const std::string& text_extra, const std::string& top = "",
                   const std::string& layers = "[1, 4]") {
  return R"({"model_type": "mllama", "image_token_index": 50,)" + top +
         R"( "vision_config": {"image_size": 8, "patch_size": 4, "vision_output_dim": 24},
 "text_config": {"model_type": "mllama_text_model", "hidden_size": 32, "intermediate_size": 64,
  "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 50,
  "rope_theta": 10000.0, "tie_word_embeddings": false, "cross_attention_layers": )" +
         layers + text_extra + "}}";
}

}  // namespace

// Llama 3.2 Vision: the interleaved cross-attention layers become fusion layers before the
// decoder layer that follows each; the vision tower's output shape comes from vision_config.
TEST(HfConfig, MllamaBecomesDeepFusion) {
  EXPECT_EQ(parameters("Llama-3.2-11B-Vision"), 9'806'653'456);
  EXPECT_EQ(hf::fusion_positions({3, 8, 13, 18, 23, 28, 33, 38}),
            (std::vector<int64_t>{3, 7, 11, 15, 19, 23, 27, 31}));
  const auto doc = convert(mllama(""));
  ASSERT_TRUE(doc);
  const Json& m = (*doc)["model"];
  EXPECT_EQ(m["fusion_layers"]["every"], 2);  // layers 1 and 3 of 4
  const auto uneven = convert(mllama("", "", "[1, 3]"));
  ASSERT_TRUE(uneven);
  EXPECT_EQ((*uneven)["model"]["fusion_layers"]["layers"], Json({1, 2}));
  EXPECT_EQ(m["decoder"]["decoder"]["num_layers"], 4);
  EXPECT_EQ(m["encoder"]["encoder"],
            Json({{"type", "features"}, {"width", 24}, {"tokens", 5}, {"input", "vision_features"}}));
  EXPECT_EQ(m["fusion_layers"]["block"]["unattended_rows"], "skip_mlp");
}

TEST(HfConfig, MllamaProblemsAreAtTheirKeys) {
  std::string errors;
  EXPECT_FALSE(convert(mllama("", "", "[1, 2]"), &errors));
  EXPECT_EQ(errors,
            "config.json:4:82: error: hf.text_config.cross_attention_layers: cross-attention "
            "layers 1 and 2 follow each other: blocks puts one fusion layer before a decoder "
            "layer\n");
  EXPECT_FALSE(convert(mllama("", "", "[1, 5]"), &errors));
  EXPECT_EQ(errors,
            "config.json:4:82: error: hf.text_config.cross_attention_layers: cross-attention "
            "layer 5 comes after the last self-attention layer: blocks puts fusion layers "
            "before a decoder layer\n");
  EXPECT_FALSE(convert(mllama("", "", "[1, 6]"), &errors));
  EXPECT_EQ(errors,
            "config.json:4:82: error: hf.text_config.cross_attention_layers: layer 6 is not "
            "among the 6 layers\n");
  EXPECT_FALSE(convert(mllama(", \"dropout\": 0.1", R"( "image_token_id": 50, "gated": 1,)"),
                       &errors));
  EXPECT_EQ(errors,
            "config.json:1:82: error: hf.gated: not a known mllama key; it may change the "
            "architecture, so it is not dropped\n"
            "config.json:4:101: error: hf.text_config.dropout: MllamaTextConfig keeps it for "
            "checkpoints only (no layer reads it); a non-zero value is not converted\n");
  EXPECT_FALSE(convert(bt::replace(bt::replace(bt::replace(mllama(""), "\"mllama_text_model\"",
                                                          "\"llama\""),
                                              "\"image_size\": 8", "\"image_size\": 9"),
                                  ", \"cross_attention_layers\": [1, 4]", ""),
                       &errors));
  EXPECT_EQ(errors,
            "config.json:1:68: error: hf.vision_config.image_size: image_size 9 is not a "
            "multiple of patch_size 4\n"
            "config.json:2:17: error: hf.text_config.cross_attention_layers: must list the "
            "cross-attention layers (a model without them is a llama)\n"
            "config.json:2:32: error: hf.text_config.model_type: must be mllama_text_model, "
            "found the quoted string \"llama\"\n");
  EXPECT_FALSE(convert(bt::replace(mllama(""), "\"image_token_index\": 50",
                                   "\"image_token_index\": 7"),
                       &errors));
  EXPECT_EQ(errors,
            "config.json:1:47: error: hf.image_token_index: token 7 is not among the 8 rows "
            "embed_tokens has past vocab_size 50\n");
}
