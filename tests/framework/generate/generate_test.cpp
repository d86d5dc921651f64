// The generation loop on a small random Llama-shaped model: cached greedy decoding equals the
// loop that recomputes the whole sequence each step (nanoGPT's generate() with top-1: the
// argmax of the last position of a full forward); a batch of prompts of different lengths,
// left-padded, equals each prompt alone; stop ids end a row where they appear; seeded sampling
// reproduces itself; prompts past the context are refused; blockc generate gives what the
// library gives.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/generate/generate.h"
#include "framework/nn/builder.h"
#include "framework/weights/load.h"
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
