// Whole models from configs/ (shrunk with --set overrides) against plain-PyTorch references
// (tests/support/reference_models.py), decoding with the cache, padding, input embeddings,
// and the errors bad inputs give.
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

const std::vector<std::string> kSmallLlama = {
    "model.hidden_size=64",
    "model.decoder.num_layers=2",
    "model.decoder.block.mixer.heads=4",
    "model.decoder.block.mixer.head_groups=2",
    "model.decoder.block.mixer.head_size=16",
    "model.decoder.block.mlp.intermediate_size=96",
    "model.embeddings.vocab_size=100",
};

Model small(const std::string& name, std::vector<std::string> sets, uint64_t seed = 7) {
  config::LoadOptions options;
  options.sets = std::move(sets);
  const config::Document doc = zoo(name, options);
  Model model = build_model(*doc.model);
  nn::initialize(model.parameters, seed);
  model.module->eval();
  return model;
}

at::Tensor tokens(int64_t batch, int64_t length, int64_t vocab = 100, uint64_t seed = 1) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(0, vocab, {batch, length}, generator, at::TensorOptions().dtype(at::kLong));
}

std::map<std::string, at::Tensor> with_tokens(const Model& model, const at::Tensor& ids) {
  auto inputs = named_parameters(model);
  inputs["tokens"] = ids;
  return inputs;
}

TEST(LanguageModelModule, Gpt2MatchesPlainPyTorch) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  Model model = small("gpt2", kSmallGpt2);
  const at::Tensor ids = tokens(2, 12);
  const at::Tensor logits = model.module->forward(ids).logits;
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 12, 100}));
  auto ref = run_reference(
      "from reference_models import gpt2\n"
      "save({'logits': gpt2(inputs, inputs['tokens'], layers=2, heads=4)}, OUTPUT)",
      with_tokens(model, ids));
  ASSERT_TRUE(ref.count("logits"));
  EXPECT_TRUE(close(logits, ref["logits"], 1e-5, 1e-5));
}

TEST(LanguageModelModule, Llama3MatchesPlainPyTorch) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  Model model = small("llama3-8b", kSmallLlama);
  const at::Tensor ids = tokens(2, 12);
  const at::Tensor logits = model.module->forward(ids).logits;
  auto ref = run_reference(
      "from reference_models import llama\n"
      "save({'logits': llama(inputs, inputs['tokens'], layers=2, heads=4, groups=2, "
      "head_size=16, theta=500000.0)}, OUTPUT)",
      with_tokens(model, ids));
  ASSERT_TRUE(ref.count("logits"));
  EXPECT_TRUE(close(logits, ref["logits"], 1e-5, 1e-5));
}

TEST(LanguageModelModule, MistralSlidingWindowMatchesPlainPyTorch) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  auto sets = kSmallLlama;
  sets.push_back("model.decoder.block.mixer.window_size=4");
  Model model = small("mistral-7b", sets);
  const at::Tensor ids = tokens(1, 12);
  const at::Tensor logits = model.module->forward(ids).logits;
  auto ref = run_reference(
      "from reference_models import llama\n"
      "save({'logits': llama(inputs, inputs['tokens'], layers=2, heads=4, groups=2, "
      "head_size=16, theta=10000.0, window=4)}, OUTPUT)",
      with_tokens(model, ids));
  ASSERT_TRUE(ref.count("logits"));
  EXPECT_TRUE(close(logits, ref["logits"], 1e-5, 1e-5));
  // The window matters: without it the logits differ.
  Model full = small("mistral-7b", kSmallLlama);
  EXPECT_FALSE(close(full.module->forward(ids).logits, logits, 1e-3, 1e-3));
}

TEST(LanguageModelModule, InputEmbeddingsGiveTheSameLogitsAsTokens) {
  Model model = small("gpt2", kSmallGpt2);
  const at::Tensor ids = tokens(2, 10);
  ModelInput input;
  input.embeddings = at::embedding(language_model(model).embeddings->word->weight, ids);
  EXPECT_TRUE(
      close(model.module->forward(input).logits, model.module->forward(ids).logits, 1e-6, 1e-6));
}

// Prefill then one token at a time through the cache equals one pass over the whole sequence.
void expect_cached_decoding_matches(const Model& model) {
  const at::Tensor ids = tokens(2, 11);
  const at::Tensor full = model.module->forward(ids).logits;
  DecodeCache cache = model.module->make_cache(16);
  ModelInput prefill;
  prefill.tokens = ids.narrow(1, 0, 8);
  prefill.cache = &cache;
  std::vector<at::Tensor> parts = {model.module->forward(prefill).logits};
  for (int64_t i = 8; i < 11; ++i) {
    ModelInput step;
    step.tokens = ids.narrow(1, i, 1);
    step.cache = &cache;
    parts.push_back(model.module->forward(step).logits);
  }
  EXPECT_EQ(cache.length(), 11);
  EXPECT_TRUE(close(at::cat(parts, 1), full, 1e-5, 1e-5));
}

TEST(LanguageModelModule, CachedDecodingMatchesFullForwardGpt2) {
  expect_cached_decoding_matches(small("gpt2", kSmallGpt2));
}

TEST(LanguageModelModule, CachedDecodingMatchesFullForwardWithWindowAndGroups) {
  auto sets = kSmallLlama;
  sets.push_back("model.decoder.block.mixer.window_size=3");
  expect_cached_decoding_matches(small("mistral-7b", sets));
}

// xPos centres its scale on the cache's capacity while decoding (cached keys keep the scale they
// were rotated with) and on the sequence in a full pass: the logits agree all the same.
TEST(LanguageModelModule, CachedDecodingMatchesFullForwardWithXpos) {
  expect_cached_decoding_matches(
      small("custom-init", {"model.hidden_size=64", "model.decoder.num_layers=2",
                            "model.decoder.block.mixer.heads=4",
                            "model.decoder.block.mixer.rotary.scale_base=4.0",
                            "model.decoder.block.mlp.intermediate_size=96",
                            "model.embeddings.vocab_size=100"}));
}

// A shared attention block runs at two positions: each keeps its own keys and values in the
// cache (keyed by position), so decoding still equals the full pass.
TEST(LanguageModelModule, CachedDecodingMatchesFullForwardWithSharedBlocks) {
  const std::string block =
      "        type: transformer\n"
      "        mixer: {type: attention, heads: 4, rotary: {type: default}}\n"
      "        mlp: {type: gated, intermediate_size: 96}\n"
      "        normalization: {type: rms_norm}\n";
  Model model = build_text(
      "version: 1\nmodel:\n  type: language_model\n  hidden_size: 64\n"
      "  embeddings: {vocab_size: 100}\n  decoder:\n    type: pattern\n"
      "    pattern: [a, s, a, s]\n    shared: [s]\n    blocks:\n      a:\n" +
          block + "      s:\n" + block + "  head:\n    normalization: {type: rms_norm}\n",
      at::kFloat, 5);
  model.module->eval();
  expect_cached_decoding_matches(model);
}

TEST(LanguageModelModule, CacheOverflowIsAnError) {
  Model model = small("llama3-8b", kSmallLlama);
  DecodeCache cache = model.module->make_cache(4);
  ModelInput input;
  input.tokens = tokens(1, 5);
  input.cache = &cache;
  try {
    model.module->forward(input);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(),
                 "model.decoder.block.mixer: the decoding cache holds 4 tokens; 5 were asked for");
  }
}

// Left padding: with the mask and positions that skip the pads, the real tokens' logits equal
// those of the unpadded sequence.
TEST(LanguageModelModule, LeftPaddingWithMaskMatchesUnpadded) {
  Model model = small("llama3-8b", kSmallLlama);
  const at::Tensor ids = tokens(1, 6);
  const at::Tensor expected = model.module->forward(ids).logits;
  ModelInput input;
  input.tokens = at::cat({at::zeros({1, 3}, ids.options()), ids}, 1);
  input.attention_mask =
      at::cat({at::zeros({1, 3}, ids.options()), at::ones({1, 6}, ids.options())}, 1);
  input.positions = at::clamp_min(at::arange(-3, 6, ids.options()), 0).unsqueeze(0);
  const at::Tensor padded = model.module->forward(input).logits;
  EXPECT_FALSE(padded.isnan().any().item<bool>());
  EXPECT_TRUE(close(padded.narrow(1, 3, 6), expected, 1e-5, 1e-5));
}

std::string error_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(LanguageModelModule, BadInputsNameTheModule) {
  Model model = small("gpt2", kSmallGpt2);
  auto& lm = *model.module;
  EXPECT_EQ(error_of([&] {
              lm.forward(at::zeros({1, 4}));
            }),
            "model: input `tokens` must be integer, got Float");
  EXPECT_EQ(error_of([&] { lm.forward(at::zeros({4}, at::kLong)); }),
            "model: input `tokens` must have 2 dimensions, got shape [4]");
  EXPECT_EQ(error_of([&] {
              lm.forward(at::full({1, 4}, 100, at::kLong));
            }),
            "model.embeddings: token ids must lie in [0, 100), got values in [100, 100]");
  EXPECT_EQ(error_of([&] {
              lm.forward(at::zeros({1, 33}, at::kLong));
            }),
            "model.embeddings: position 32 is past the position table (max_positions 32)");
  ModelInput wide;
  wide.embeddings = at::zeros({1, 4, 65});
  EXPECT_EQ(error_of([&] { lm.forward(wide); }),
            "model.embeddings: input embeddings must be [batch, tokens, 64], got shape [1, 4, 65]");
  ModelInput masked;
  masked.tokens = at::zeros({2, 4}, at::kLong);
  masked.attention_mask = at::ones({2, 5}, at::kLong);
  EXPECT_EQ(error_of([&] { lm.forward(masked); }),
            "model: the attention mask must be [2, 4] (batch, cached + new tokens), got [2, 5]");
  ModelInput both;
  both.tokens = at::zeros({1, 4}, at::kLong);
  both.embeddings = at::zeros({1, 4, 64});
  EXPECT_EQ(error_of([&] { lm.forward(both); }),
            "model: give exactly one of the inputs tokens, embeddings, got tokens, embeddings");
  EXPECT_EQ(error_of([&] { lm.forward(ModelInput{}); }),
            "model: give exactly one of the inputs tokens, embeddings, got none");
  ModelInput extra{.tokens = at::zeros({1, 4}, at::kLong)};
  extra.named["pixel_values"] = at::zeros({1, 3, 8, 8});
  EXPECT_EQ(error_of([&] { lm.forward(extra); }),
            "model: unexpected input tensor `pixel_values`; this model takes: tokens, embeddings, "
            "attention_mask, positions");
  ModelInput hidden{.tokens = at::zeros({1, 4}, at::kLong)};
  hidden.hidden_states = {"decoder.2"};
  EXPECT_EQ(error_of([&] { lm.forward(hidden); }),
            "model: no hidden state `decoder.2`; this model has: embeddings, decoder.0, decoder.1, "
            "decoder");
}

// Hugging Face's input names are the same inputs; a name and its alias together are refused.
TEST(LanguageModelModule, InputsFromNamedTensors) {
  Model model = small("gpt2", kSmallGpt2);
  const at::Tensor ids = tokens(2, 5);
  ModelInput input =
      ModelInput::from_tensors({{"input_ids", ids}, {"attention_mask", at::ones({2, 5})}});
  EXPECT_TRUE(input.tokens.equal(ids));
  EXPECT_TRUE(input.named.empty());
  EXPECT_TRUE(close(model.module->forward(input).logits, model.module->forward(ids).logits, 0, 0));
  EXPECT_EQ(error_of([&] {
              ModelInput::from_tensors({{"input_ids", ids}, {"tokens", ids}});
            }),
            "input: `input_ids` and `tokens` are the same input; give one of them");
}

// Hidden states on request: the embeddings, each block's output, the decoder's output (which the
// head turns into the logits).
TEST(LanguageModelModule, HiddenStatesOnRequest) {
  Model model = small("llama3-8b", kSmallLlama);
  LanguageModel& lm = language_model(model);
  const at::Tensor ids = tokens(2, 6);
  ModelInput input{.tokens = ids};
  input.hidden_states = {"embeddings", "decoder.0", "decoder.1", "decoder"};
  const ModelOutput out = lm.forward(input);
  ASSERT_EQ(out.hidden_states.size(), 4u);
  EXPECT_TRUE(close(out.hidden_states.at("embeddings"),
                    at::embedding(lm.embeddings->word->weight, ids), 0, 0));
  EXPECT_TRUE(close(out.hidden_states.at("decoder.1"), out.hidden_states.at("decoder"), 0, 0));
  EXPECT_TRUE(close(lm.head->forward(out.hidden_states.at("decoder")), out.logits, 0, 0));
  Step step;
  step.positions = at::arange(6).unsqueeze(0).expand({2, 6});
  auto block0 = find_module<BlockModule>(lm, "decoder.0");
  ASSERT_TRUE(block0);
  EXPECT_TRUE(close(block0->forward(out.hidden_states.at("embeddings"), step),
                    out.hidden_states.at("decoder.0"), 1e-6, 1e-6));
  EXPECT_TRUE(lm.forward(ids).hidden_states.empty());
}

TEST(LanguageModelModule, BackwardReachesEveryParameter) {
  Model model = small("llama3-8b", kSmallLlama);
  model.module->train();
  const at::Tensor ids = tokens(2, 8);
  const at::Tensor logits = model.module->forward(ids).logits;
  at::cross_entropy_loss(logits.reshape({-1, 100}), ids.reshape({-1})).backward();
  for (const auto& p : model.parameters) {
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    EXPECT_TRUE(p.tensor.grad().isfinite().all().item<bool>()) << p.name;
    EXPECT_GT(p.tensor.grad().abs().sum().item<double>(), 0) << p.name;
  }
}

}  // namespace
}  // namespace blocks::testing
