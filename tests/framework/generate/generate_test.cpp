// The generation loop on a small random Llama-shaped model: cached greedy decoding equals the
// loop that recomputes the whole sequence each step (nanoGPT's generate() with top-1: the
// argmax of the last position of a full forward); a batch of prompts of different lengths,
// left-padded, equals each prompt alone; stop ids end a row where they appear; seeded sampling
// reproduces itself; prompts past the context are refused; blockc generate gives what the
// library gives. Multimodal prompts, media given at prefill only: an early-fusion model (a ViT's
// patches over placeholder runs) and a deep-fusion model (gated cross-attention into features)
// decode with the cache as a loop that gives the media to a full forward at every step, and a
// batch of them as each alone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <limits>
#include <set>

#include "blocks/models/early_fusion_module.h"
#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/generate/generate.h"
#include "framework/media/image.h"
#include "framework/nn/builder.h"
#include "framework/weights/load.h"
#include "framework/weights/safetensors.h"
#include "tests/support/blockc_run.h"
#include "tests/support/model_text.h"
#include "tests/support/temp_dir.h"

namespace blocks {
namespace {

constexpr const char* kModel = R"(version: 1
model:
  type: language_model
  hidden_size: 32
  embeddings: {vocab_size: 64}
  decoder:
    type: repeat
    num_layers: 2
    block:
      type: transformer
      mixer: {type: attention, heads: 4, head_groups: 2, rotary: {type: default}}
      mlp: {type: gated, intermediate_size: 64}
      normalization: {type: rms_norm}
  head: {normalization: {type: rms_norm}}
)";

Model small_model() {
  config::Diagnostics d;
  auto doc = config::load_document_text(kModel, "model.yaml", registry(), d);
  EXPECT_TRUE(doc) << d.format();
  Model model = build_model(*doc->model);
  // A larger init than the default, so that greedy choices are not near ties.
  nn::initialize(model.parameters, 5);
  for (auto& p : model.parameters) p.tensor.detach().mul_(4);
  model.module->eval();
  return model;
}

// nanoGPT's generate() with top-1, in blocks: the whole sequence each step, no cache.
std::vector<int64_t> recomputed(ModelModule& model, std::vector<int64_t> ids, int64_t steps) {
  c10::NoGradGuard no_grad;
  std::vector<int64_t> out;
  for (int64_t s = 0; s < steps; ++s) {
    const at::Tensor tokens = at::tensor(ids, at::kLong).unsqueeze(0);
    const int64_t next = model.forward(tokens).logits[0][-1].argmax().item<int64_t>();
    out.push_back(next);
    ids.push_back(next);
  }
  return out;
}

const std::string kEarlyFusion =
    testing::tiny_llava_text("  begin_tokens: {image: 61}\n  end_tokens: {image: 62}\n");

constexpr const char* kDeepFusion = R"(version: 1
model:
  type: deep_fusion
  decoder:
    type: language_model
    hidden_size: 32
    embeddings: {vocab_size: 50}
    decoder:
      type: repeat
      num_layers: 4
      block:
        type: transformer
        mixer: {type: attention, heads: 4, head_groups: 2, rotary: {type: default}}
        mlp: {type: gated, intermediate_size: 64}
        normalization: {type: rms_norm}
    head: {normalization: {type: rms_norm}}
  encoder:
    encoder: {type: features, width: 12, tokens: 3}
    connectors: [{type: linear, bias: true}]
  fusion_layers:
    every: 2
    block:
      type: gated_cross_attention
      attention: {heads: 4, head_groups: 2}
      mlp: {type: gated, intermediate_size: 48}
      normalization: {type: rms_norm}
      attention_gate: {initialization: {type: fill, value: 0.5}}
      mlp_gate: {initialization: {type: fill, value: -0.7}}
)";

Model model_of(const char* text, double scale) {
  config::Diagnostics d;
  auto doc = config::load_document_text(text, "model.yaml", registry(), d);
  EXPECT_TRUE(doc) << d.format();
  Model model = build_model(*doc->model);
  nn::initialize(model.parameters, 5);
  for (auto& p : model.parameters) p.tensor.detach().mul_(scale);
  model.module->eval();
  return model;
}

// The loop without a cache: a full forward of the whole sequence and the media every step, the
// argmax over the ids generate() may choose.
std::vector<int64_t> recomputed_with(ModelModule& model, std::vector<int64_t> ids, int64_t steps,
                                     const std::map<std::string, at::Tensor>& media) {
  c10::NoGradGuard no_grad;
  const auto never = generate::media_ids(model);
  std::vector<int64_t> out;
  for (int64_t s = 0; s < steps; ++s) {
    ModelInput input{.tokens = at::tensor(ids, at::kLong).unsqueeze(0)};
    input.named = media;
    at::Tensor last = model.forward(input).logits[0][-1].clone();
    for (int64_t id : never) last[id] = -std::numeric_limits<float>::infinity();
    out.push_back(last.argmax().item<int64_t>());
    ids.push_back(out.back());
  }
  return out;
}

std::vector<int64_t> with_image_runs(std::vector<int64_t> ids, size_t at, int images) {
  std::vector<int64_t> runs;
  for (int i = 0; i < images; ++i) {
    runs.push_back(61);
    runs.insert(runs.end(), 4, 63);
    runs.push_back(62);
  }
  ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(at), runs.begin(), runs.end());
  return ids;
}

TEST(Generate, EarlyFusionImagesArePrefilledOnce) {
  Model model = model_of(kEarlyFusion.c_str(), 3);
  EXPECT_EQ(generate::media_ids(*model.module), (std::set<int64_t>{61, 62, 63}));
  at::manual_seed(4);
  const at::Tensor pixels = at::randn({3, 3, 8, 8});
  const std::vector<std::vector<int64_t>> prompts = {with_image_runs({1, 5, 9}, 1, 1),
                                                     with_image_runs({2, 30, 31, 32, 33}, 2, 2)};
  const std::vector<at::Tensor> own = {pixels.narrow(0, 0, 1), pixels.narrow(0, 1, 2)};
  generate::GenerateOptions options{.max_new_tokens = 10, .sampling = {.greedy = true}};
  options.prefill_inputs["pixel_values"] = pixels;
  const auto together = generate::generate(*model.module, prompts, options);
  for (size_t r = 0; r < prompts.size(); ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    options.prefill_inputs["pixel_values"] = own[r];
    const auto alone = generate::generate(*model.module, {prompts[r]}, options);
    EXPECT_EQ(together[r].ids, alone[0].ids);
    EXPECT_EQ(alone[0].ids,
              recomputed_with(*model.module, prompts[r], 10, {{"pixel_values", own[r]}}));
    // The images steer the choices: without them (their runs replaced by text) they differ.
    std::vector<int64_t> text = prompts[r];
    for (auto& id : text)
      if (id >= 61) id = 7;
    const auto blind = generate::generate(*model.module, {text}, {.max_new_tokens = 10,
                                                                  .sampling = {.greedy = true}});
    EXPECT_NE(blind[0].ids, alone[0].ids);
  }
}

TEST(Generate, DeepFusionMemoryIsComputedAtPrefillOnly) {
  Model model = model_of(kDeepFusion, 3);
  at::manual_seed(6);
  const at::Tensor features = at::randn({2, 2, 3, 12});
  const std::vector<std::vector<int64_t>> prompts = {{3, 4, 5}, {9, 8, 7, 6, 5, 4}};
  generate::GenerateOptions options{.max_new_tokens = 10, .sampling = {.greedy = true}};
  options.prefill_inputs["features"] = features;
  const auto together = generate::generate(*model.module, prompts, options);
  for (size_t r = 0; r < prompts.size(); ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    const at::Tensor own = features.narrow(0, static_cast<int64_t>(r), 1);
    options.prefill_inputs["features"] = own;
    const auto alone = generate::generate(*model.module, {prompts[r]}, options);
    EXPECT_EQ(together[r].ids, alone[0].ids);
    EXPECT_EQ(alone[0].ids, recomputed_with(*model.module, prompts[r], 10, {{"features", own}}));
    const auto blind = generate::generate(*model.module, {prompts[r]},
                                          {.max_new_tokens = 10, .sampling = {.greedy = true}});
    EXPECT_NE(blind[0].ids, alone[0].ids) << "the memory steers the choices";
  }
}

// blockc generate --image into a deep-fusion model whose encoder takes pixel_values (Flamingo's
// shape: a ViT, a projector, gated cross-attention): the image prepared by the processor file
// and given once as one batch row's items gives the library's ids with those pixels; without
// the image the ids differ.
TEST(Generate, BlockcGivesADeepFusionEncoderItsImage) {
  testing::TempDir dir;
  const std::string features = "    encoder: {type: features, width: 12, tokens: 3}\n";
  const std::string yaml = testing::replace(kDeepFusion, features, testing::tiny_vit_encoder(4));
  const std::string model = dir.write("flamingo.yaml", yaml);
  // The library's model (a wide init, so the image shows in the choices) is the CLI's weights.
  Model built = model_of(yaml.c_str(), 3);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : built.parameters) tensors.emplace_back(p.name, p.tensor.detach());
  weights::write_safetensors(dir.at("w.safetensors"), tensors, {});
  const std::string png = dir.at("image.png");
  const std::string write = "/usr/bin/python3 -c \"from PIL import Image; import random; "
                            "random.seed(1); im = Image.new('RGB', (8, 8)); "
                            "im.putdata([tuple(random.randrange(256) for _ in range(3)) "
                            "for _ in range(64)]); im.save('" + png + "')\" 2>/dev/null";
  if (std::system(write.c_str()) != 0) {
    if (std::getenv("BLOCKS_REQUIRE_REFERENCES")) FAIL() << "python3-pil is missing";
    GTEST_SKIP() << "python3-pil is not installed";
  }
  const std::string processor = dir.write(
      "preprocessor_config.json",
      R"({"do_resize": false, "do_center_crop": false, "image_mean": [0.5, 0.5, 0.5],
          "image_std": [0.5, 0.5, 0.5]})");
  weights::write_safetensors(dir.at("prompt.safetensors"),
                             {{"tokens", at::tensor({3, 4, 5, 6}, at::kLong).view({1, 4})}}, {});
  const std::string base = "generate --model " + model + " --weights " + dir.at("w.safetensors") +
                           " --prompt-tokens " + dir.at("prompt.safetensors") +
                           " --greedy --max-new-tokens 8 --json";
  const auto r = testing::blockc(base + " --image " + png + " --image-processor " + processor);
  ASSERT_EQ(r.code, 0) << r.err;

  const auto pixels = media::preprocess(media::read_image(png),
                                        media::read_image_processor(processor));
  generate::GenerateOptions options{.max_new_tokens = 8, .sampling = {.greedy = true}};
  options.prefill_inputs["pixel_values"] = at::tensor(pixels).view({1, 1, 3, 8, 8});
  const auto library = generate::generate(*built.module, {{3, 4, 5, 6}}, options);
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["rows"][0]["ids"].get<std::vector<int64_t>>(), library[0].ids);
  const auto blind = testing::blockc(base);
  ASSERT_EQ(blind.code, 0) << blind.err;
  EXPECT_NE(nlohmann::json::parse(blind.out)["rows"][0]["ids"].get<std::vector<int64_t>>(),
            library[0].ids);
}

// The first row's new ids of a `blockc generate --json` run.
std::vector<int64_t> first_ids(const testing::BlockcResult& r) {
  const auto json = nlohmann::json::parse(r.out);
  return json["rows"][0]["ids"].get<std::vector<int64_t>>();
}

// An early-fusion model whose placeholder (63) is past the tokenizer's ids: a prompt that writes
// `<image>` would put plain pieces where the image belongs, so it is refused; without it the
// image goes first.
TEST(Generate, APlaceholderTheTokenizerCannotWriteIsRefused) {
  testing::TempDir dir;
  const std::string model = dir.write("llava.yaml", kEarlyFusion);
  ASSERT_EQ(testing::blockc("init " + model + " --seed 2 -o " + dir.at("w.safetensors")).code, 0);
  dir.write("corpus.txt", "look at this picture here\n");
  const std::string png = dir.at("image.png");
  const std::string script =
      "/usr/bin/python3 -c \"import sentencepiece as spm; from PIL import Image; "
      "spm.SentencePieceTrainer.train(input='" + dir.at("corpus.txt") + "', model_prefix='" +
      dir.at("sp") + "', vocab_size=24, model_type='bpe', hard_vocab_limit=False, "
      "minloglevel=2); Image.new('RGB', (8, 8), (200, 30, 90)).save('" + png + "')\"";
  if (std::system(script.c_str()) != 0) {
    if (std::getenv("BLOCKS_REQUIRE_REFERENCES")) FAIL() << "python3-sentencepiece or -pil missing";
    GTEST_SKIP() << "python3-sentencepiece or python3-pil is not installed";
  }
  const std::string processor = dir.write(
      "preprocessor_config.json",
      R"({"do_resize": false, "do_center_crop": false, "image_mean": [0.5, 0.5, 0.5],
          "image_std": [0.5, 0.5, 0.5]})");
  const std::string base = "generate --model " + model + " --weights " + dir.at("w.safetensors") +
                           " --tokenizer " + dir.at("sp.model") + " --image " + png +
                           " --image-processor " + processor + " --greedy --max-new-tokens 4";
  const auto written = testing::blockc(base + " --prompt 'look <image> here'");
  EXPECT_EQ(written.code, 1);
  EXPECT_NE(written.err.find("the prompt writes <image> at byte 5, but the tokenizer " +
                             dir.at("sp.model") + " has no id for the model's image placeholder "
                             "(token 63): it would be read as plain text"),
            std::string::npos)
      << written.err;
  // A context of 12 positions: fitting BOS, the image's 6 and the text's pieces with 4 new
  // tokens would cut the image.
  const std::string context = " --set model.decoder.embeddings.max_positions=12";
  ASSERT_EQ(testing::blockc("init " + model + context + " -o " + dir.at("w16.safetensors")).code,
            0);
  const auto cut = testing::blockc(
      testing::replace(base, dir.at("w.safetensors"), dir.at("w16.safetensors")) + context +
      " --prompt 'look here' --truncate");
  EXPECT_EQ(cut.code, 1);
  EXPECT_NE(cut.err.find("would cut an image's placeholders"), std::string::npos)
      << cut.err << cut.out;
  const auto first = testing::blockc(base + " --prompt 'look here' --json");
  ASSERT_EQ(first.code, 0) << first.err;
  // The embeddings' rows past the tokenizer's ids (at most 24) are never chosen: no text there.
  for (int64_t id : first_ids(first)) EXPECT_LT(id, 24);
}

TEST(Generate, CachedGreedyEqualsRecomputing) {
  Model model = small_model();
  const std::vector<int64_t> prompt = {3, 14, 15, 9, 26};
  generate::GenerateOptions options{.max_new_tokens = 12, .sampling = {.greedy = true}};
  const auto rows = generate::generate(*model.module, {prompt}, options);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].ids, recomputed(*model.module, prompt, 12));
  EXPECT_EQ(rows[0].stop, "length");
  ASSERT_EQ(rows[0].log_probs.size(), 12u);
  for (double lp : rows[0].log_probs) EXPECT_LE(lp, 0.0);
}

TEST(Generate, ABatchOfPromptsEqualsEachAlone) {
  Model model = small_model();
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3}, {40, 41, 42, 43, 44, 45, 46}, {7}};
  generate::GenerateOptions options{.max_new_tokens = 8, .sampling = {.greedy = true}};
  const auto together = generate::generate(*model.module, prompts, options);
  for (size_t r = 0; r < prompts.size(); ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    const auto alone = generate::generate(*model.module, {prompts[r]}, options);
    EXPECT_EQ(together[r].ids, alone[0].ids);
    for (size_t k = 0; k < alone[0].log_probs.size(); ++k)
      EXPECT_NEAR(together[r].log_probs[k], alone[0].log_probs[k], 1e-4);
  }
}

TEST(Generate, StopIdsEndTheirRow) {
  Model model = small_model();
  const std::vector<int64_t> prompt = {5, 6, 7};
  generate::GenerateOptions options{.max_new_tokens = 10, .sampling = {.greedy = true}};
  const auto free_run = generate::generate(*model.module, {prompt, {9, 9}}, options);
  const int64_t stop = free_run[0].ids.at(3);
  const auto first = std::find(free_run[0].ids.begin(), free_run[0].ids.end(), stop);
  options.stop_ids = {stop};
  std::vector<std::vector<int64_t>> steps;
  options.on_step = [&](const std::vector<int64_t>& ids) { steps.push_back(ids); };
  const auto stopped = generate::generate(*model.module, {prompt, {9, 9}}, options);
  EXPECT_EQ(stopped[0].ids, std::vector<int64_t>(free_run[0].ids.begin(), first + 1));
  EXPECT_EQ(stopped[0].stop, "stop");
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.front().size(), 2u);
  // After row 0 stopped, the stream reports -1 for it.
  if (steps.size() > stopped[0].ids.size()) EXPECT_EQ(steps.back()[0], -1);
}

// Classifier-free guidance in the loop: scale 1 is plain decoding; at scale 3 the greedy ids are
// those of the loop that recomputes both sequences in full each step and combines their last
// logits with guide(); a token range restricts every choice.
TEST(Generate, GuidanceDecodesTheUnconditionalStreamAlongside) {
  Model model = small_model();
  const std::vector<int64_t> prompt = {3, 14, 15, 9}, negative = {50, 51};
  generate::GenerateOptions options{.max_new_tokens = 10, .sampling = {.greedy = true}};
  const auto plain = generate::generate(*model.module, {prompt}, options);
  options.unconditional = {negative};
  EXPECT_EQ(generate::generate(*model.module, {prompt}, options)[0].ids, plain[0].ids);
  for (auto space : {generate::GuidanceSpace::log_probs, generate::GuidanceSpace::logits}) {
    options.guidance_scale = 3.0;
    options.guidance_space = space;
    const auto guided = generate::generate(*model.module, {prompt}, options);
    c10::NoGradGuard no_grad;
    std::vector<int64_t> cond = prompt, uncond = negative, expected;
    for (int s = 0; s < 10; ++s) {
      auto last = [&](const std::vector<int64_t>& ids) {
        return model.module->forward(at::tensor(ids, at::kLong).unsqueeze(0)).logits.select(1, -1);
      };
      const int64_t next =
          generate::guide(last(cond), last(uncond), 3.0, space).argmax(-1).item<int64_t>();
      expected.push_back(next);
      cond.push_back(next);
      uncond.push_back(next);
    }
    EXPECT_EQ(guided[0].ids, expected);
    EXPECT_NE(guided[0].ids, plain[0].ids) << "scale 3 changes the choices here";
  }
  generate::GenerateOptions ranged{.max_new_tokens = 10, .sampling = {.temperature = 2.0},
                                   .allowed_begin = 10, .allowed_end = 20};
  const auto restricted = generate::generate(*model.module, {prompt}, ranged);
  for (int64_t id : restricted[0].ids) {
    EXPECT_GE(id, 10);
    EXPECT_LT(id, 20);
  }
}

TEST(Generate, SeededSamplingReproducesItself) {
  Model model = small_model();
  generate::GenerateOptions options{.max_new_tokens = 16,
                                    .sampling = {.temperature = 1.5, .top_k = 20}, .seed = 3};
  const auto a = generate::generate(*model.module, {{1, 2, 3}}, options);
  const auto b = generate::generate(*model.module, {{1, 2, 3}}, options);
  EXPECT_EQ(a[0].ids, b[0].ids);
  options.seed = 4;
  const auto c = generate::generate(*model.module, {{1, 2, 3}}, options);
  EXPECT_NE(a[0].ids, c[0].ids);
}

TEST(Generate, BadRequestsAreNamed) {
  Model model = small_model();
  auto message = [&](const std::vector<std::vector<int64_t>>& prompts,
                     const generate::GenerateOptions& options) {
    try {
      generate::generate(*model.module, prompts, options);
    } catch (const generate::SamplingError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({{1, 2, 3}}, {.max_new_tokens = 10, .max_positions = 12}),
            "prompt 0 of 3 tokens + max_new_tokens 10 is past the model's 12 positions");
  EXPECT_EQ(message({{1}, {}}, {}), "prompt 1 is empty");
  EXPECT_EQ(message({{1}}, {.sampling = {.top_p = 2}}), "top_p 2 must be in (0, 1]");
  EXPECT_EQ(message({{1}, {2}}, {.unconditional = {{1}}}),
            "1 unconditional prompts for 2 prompts (one each)");
  EXPECT_EQ(message({{1}}, {.allowed_begin = 5, .allowed_end = 5}),
            "the allowed id range [5, 5) is empty");
}

// blockc generate on a bytes model: --json gives the ids generate() gives in-process from the
// same weights; the streamed text is their decoding; tokenizers and prompts that do not fit the
// model are refused, naming both sides.
TEST(Generate, BlockcGenerateMatchesTheLibrary) {
  testing::TempDir dir;
  const std::string yaml = dir.write(
      "bytes.yaml", testing::replace(testing::replace(kModel, "vocab_size: 64", "vocab_size: 256, "
                                                      "max_positions: 64"),
                                     "rotary: {type: default}", "rotary: {type: none}"));
  ASSERT_EQ(testing::blockc("init " + yaml + " --seed 7 -o " + dir.at("w.safetensors")).code, 0);
  const std::string base = "generate --model " + yaml + " --weights " + dir.at("w.safetensors") +
                           " --tokenizer bytes --prompt 'Hello, w' --greedy";
  const auto r = testing::blockc(base + " --max-new-tokens 12 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  const auto ids = json["rows"][0]["ids"].get<std::vector<int64_t>>();

  config::Diagnostics d;
  auto doc = config::load_document(yaml, registry(), d);
  ASSERT_TRUE(doc) << d.format();
  Model model = build_model(*doc->model);
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : model.parameters) targets.emplace_back(p.name, p.tensor);
  weights::load_safetensors(targets, {dir.at("w.safetensors")}, true);
  model.module->eval();
  const std::string prompt = "Hello, w";
  const auto rows = generate::generate(*model.module, {{prompt.begin(), prompt.end()}},
                                       {.max_new_tokens = 12, .sampling = {.greedy = true}});
  EXPECT_EQ(ids, rows[0].ids);

  const auto streamed = testing::blockc(base + " --max-new-tokens 12");
  ASSERT_EQ(streamed.code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, std::string(ids.begin(), ids.end()) + "\n");

  // Guidance through the CLI: the library's ids with the same unconditional prompt.
  const auto guided = testing::blockc(base + " --max-new-tokens 6 --json --guidance-scale 2 "
                                      "--negative-prompt 'xyz' --guidance-space logits");
  ASSERT_EQ(guided.code, 0) << guided.err;
  const std::string negative = "xyz";
  const auto library = generate::generate(
      *model.module, {{prompt.begin(), prompt.end()}},
      {.max_new_tokens = 6, .sampling = {.greedy = true},
       .unconditional = {{negative.begin(), negative.end()}}, .guidance_scale = 2,
       .guidance_space = generate::GuidanceSpace::logits});
  EXPECT_EQ(nlohmann::json::parse(guided.out)["rows"][0]["ids"].get<std::vector<int64_t>>(),
            library[0].ids);
  EXPECT_EQ(testing::blockc(base + " --guidance-scale 2").code, 2) << "bytes have no BOS";

  const auto small = dir.write("small.yaml", kModel);
  ASSERT_EQ(testing::blockc("init " + small + " -o " + dir.at("s.safetensors")).code, 0);
  const auto wrong = testing::blockc("generate --model " + small + " --weights " +
                                     dir.at("s.safetensors") + " --tokenizer bytes --prompt x");
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.err.find("the tokenizer bytes has 256 ids but the model's embeddings have 64"),
            std::string::npos)
      << wrong.err;
  const auto longer = testing::blockc(base + " --max-new-tokens 60");
  EXPECT_EQ(longer.code, 1);
  EXPECT_NE(longer.err.find("prompt 0 of 8 tokens + max_new_tokens 60 is past the model's 64 "
                            "positions"),
            std::string::npos)
      << longer.err;
}

}  // namespace
}  // namespace blocks

namespace blocks {
namespace {

// The bytes model of BlockcGenerateMatchesTheLibrary, written with its weights into `dir`.
std::string bytes_model(testing::TempDir& dir) {
  const std::string yaml = dir.write(
      "bytes.yaml", testing::replace(testing::replace(kModel, "vocab_size: 64", "vocab_size: 256, "
                                                      "max_positions: 64"),
                                     "rotary: {type: default}", "rotary: {type: none}"));
  EXPECT_EQ(testing::blockc("init " + yaml + " --seed 7 -o " + dir.at("w.safetensors")).code, 0);
  return "generate --model " + yaml + " --weights " + dir.at("w.safetensors") +
         " --tokenizer bytes --greedy --json";
}

// --stop STR ends a row at the token that completes STR; --truncate keeps a long prompt's newest
// tokens (bytes have no BOS to keep first), which is generating from those tokens alone.
TEST(Generate, StopStringsAndTruncation) {
  testing::TempDir dir;
  const std::string base = bytes_model(dir);
  const auto free_run = testing::blockc(base + " --prompt 'Hello, w' --max-new-tokens 16");
  ASSERT_EQ(free_run.code, 0) << free_run.err;
  const auto ids = first_ids(free_run);
  const std::string text(ids.begin(), ids.end());
  const std::string stop = text.substr(5, 2);
  const size_t end = text.find(stop) + stop.size();
  const auto stopped = testing::blockc(base + " --prompt 'Hello, w' --max-new-tokens 16 --stop '" +
                                       stop + "'");
  ASSERT_EQ(stopped.code, 0) << stopped.err;
  EXPECT_EQ(first_ids(stopped), std::vector<int64_t>(ids.begin(), ids.begin() + end));
  EXPECT_EQ(nlohmann::json::parse(stopped.out)["rows"][0]["stop"], "stop");

  const auto refused = testing::blockc(base + " --prompt 'Hello, w' --max-new-tokens 60");
  EXPECT_EQ(refused.code, 1);
  const auto truncated =
      testing::blockc(base + " --prompt 'Hello, w' --max-new-tokens 60 --truncate");
  ASSERT_EQ(truncated.code, 0) << truncated.err;
  EXPECT_NE(truncated.err.find("--truncate: dropped the prompt 0's oldest 4 tokens to fit the "
                               "model's 64 positions"),
            std::string::npos)
      << truncated.err;
  const auto newest = testing::blockc(base + " --prompt 'o, w' --max-new-tokens 60");
  ASSERT_EQ(newest.code, 0) << newest.err;
  EXPECT_EQ(first_ids(truncated), first_ids(newest));
}

TEST(Generate, BlockcNamesWhatItCannotTake) {
  testing::TempDir dir;
  const std::string base = bytes_model(dir);
  const auto special = testing::blockc(base + " --prompt 'say <|im_start|>hi'");
  EXPECT_EQ(special.code, 1);
  EXPECT_NE(special.err.find("the prompt names <|im_start|> at byte 4, which the tokenizer bytes "
                             "does not have as a special token: it would be read as plain text"),
            std::string::npos)
      << special.err;
  weights::write_safetensors(dir.at("ids.safetensors"),
                             {{"tokens", at::tensor({1, 300, 2}, at::kLong).view({1, 3})}}, {});
  const auto outside = testing::blockc(base + " --prompt-tokens " + dir.at("ids.safetensors"));
  EXPECT_EQ(outside.code, 1);
  EXPECT_NE(outside.err.find("prompt 0, token 1: id 300 is outside the model's 256 embeddings"),
            std::string::npos)
      << outside.err;
  const auto no_tokenizer = testing::replace(base, " --tokenizer bytes", "");
  weights::write_safetensors(dir.at("ok.safetensors"),
                             {{"tokens", at::tensor({1, 2, 3}, at::kLong).view({1, 3})}}, {});
  const auto negative = testing::blockc(no_tokenizer + " --prompt-tokens " +
                                        dir.at("ok.safetensors") +
                                        " --guidance-scale 2 --negative-prompt x");
  EXPECT_EQ(negative.code, 2);
  EXPECT_NE(negative.err.find("--negative-prompt needs --tokenizer"), std::string::npos)
      << negative.err;
  const auto sampling = testing::blockc(base + " --prompt x --top-p 1.5");
  EXPECT_EQ(sampling.code, 1);
  EXPECT_NE(sampling.err.find("top_p 1.5 must be in (0, 1]"), std::string::npos) << sampling.err;
  const auto no_room = testing::blockc(base + " --prompt 'Hello, w' --max-new-tokens 64 --truncate");
  EXPECT_EQ(no_room.code, 1);
  EXPECT_NE(no_room.err.find("--truncate: max_new_tokens 64 leaves no room for the prompt 0 in "
                             "the model's 64 positions"),
            std::string::npos)
      << no_room.err;
  // Prompt files: no tokens, a mask of another shape, a batch with --image.
  weights::write_safetensors(dir.at("none.safetensors"),
                             {{"ids", at::tensor({1, 2}, at::kLong).view({1, 2})}}, {});
  const auto none = testing::blockc(base + " --prompt-tokens " + dir.at("none.safetensors"));
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find(dir.at("none.safetensors") + ": no `tokens` (or `input_ids`) tensor"),
            std::string::npos)
      << none.err;
  weights::write_safetensors(dir.at("mask.safetensors"),
                             {{"tokens", at::tensor({1, 2, 3, 4}, at::kLong).view({2, 2})},
                              {"attention_mask", at::ones({2, 3}, at::kLong)}},
                             {});
  const auto mask = testing::blockc(base + " --prompt-tokens " + dir.at("mask.safetensors"));
  EXPECT_EQ(mask.code, 1);
  EXPECT_NE(mask.err.find(dir.at("mask.safetensors") + ": attention_mask is [2, 3] but the "
                          "tokens are [2, 2]"),
            std::string::npos)
      << mask.err;
  weights::write_safetensors(dir.at("batch.safetensors"),
                             {{"tokens", at::tensor({1, 2, 3, 4}, at::kLong).view({2, 2})}}, {});
  const auto batch = testing::blockc(base + " --prompt-tokens " + dir.at("batch.safetensors") +
                                     " --image " + dir.at("batch.safetensors"));
  EXPECT_EQ(batch.code, 2);
  EXPECT_NE(batch.err.find("--image gives the images of one prompt; for a batch, give "
                           "pixel_values in the --prompt-tokens file"),
            std::string::npos)
      << batch.err;
}

}  // namespace
}  // namespace blocks
