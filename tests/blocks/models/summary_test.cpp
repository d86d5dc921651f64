// blockc summary: the printed tree and totals of every zoo config against committed fixtures,
// and forward FLOPs per token: every registered type answers for its own computation, and the
// figures of attention, MoE, Mamba and heads equal formulas written out here.
//
// Regenerate the fixtures (only when a change of the figures is intended) from the repo root:
//   for f in configs/*.yaml; do n=$(basename $f .yaml)
//     build/blockc summary $f > tests/fixtures/summary/$n.txt
//     build/blockc summary $f --context 32768 > tests/fixtures/summary/$n.context-32768.txt; done
#include "blocks/models/summary.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "blocks/linear/linear.h"
#include "tests/support/blockc_run.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;

// Without positions, which is fine for counting; `none` is written out as validation asks.
const std::string kAttention = "{type: attention, heads: 4, rotary: {type: none}}";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> zoo_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(BLOCKS_SOURCE_DIR "/configs"))
    if (entry.path().extension() == ".yaml") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string summary_of(const std::string& name, int64_t context) {
  const config::Document doc = zoo(name);
  SummaryOptions options;
  options.context = context;
  options.title = "configs/" + name + ".yaml";  // what blockc prints for that argument
  return summarize(*doc.model, options);
}

// The fixtures were written by `blockc summary` before FLOPs moved into the config types; the
// output must stay the same byte for byte. A new zoo config without its fixtures fails here.
TEST(Summary, EveryZooConfigPrintsItsFixture) {
  const auto names = zoo_names();
  ASSERT_GE(names.size(), 9u);
  for (const auto& name : names) {
    for (const auto& [context, suffix] :
         {std::pair<int64_t, std::string>{2048, ""}, {32768, ".context-32768"}}) {
      const fs::path fixture =
          fs::path(BLOCKS_SOURCE_DIR) / "tests/fixtures/summary" / (name + suffix + ".txt");
      ASSERT_TRUE(fs::exists(fixture)) << fixture << " is missing (see the top of this file)";
      EXPECT_EQ(summary_of(name, context), slurp(fixture)) << name << " at context " << context;
    }
  }
}

TEST(Summary, BlockcPrintsTheSameAsTheLibrary) {
  const auto r = blockc("summary configs/mixtral-8x7b.yaml --context 32768");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, summary_of("mixtral-8x7b", 32768));
}

// Own FLOPs of every config at or below the model, by path, and how many positions each runs.
struct Flops {
  std::map<std::string, double> own;
  std::map<std::string, int64_t> runs;
  std::map<std::string, const config::Config*> configs;
  double total = 0;
  // Everything at or below `prefix`, for one run of `prefix`.
  double below(const std::string& prefix) const {
    double sum = 0;
    for (const auto& [path, flops] : own)
      if (path == prefix || path.rfind(prefix + ".", 0) == 0) sum += flops * runs.at(path);
    return sum / static_cast<double>(runs.at(prefix));
  }
};

Flops flops_of(const config::Config& model, int64_t context) {
  Flops f;
  f.total = config::count_forward_flops(
      model, {.context_length = context},
      [&](const config::Config& c, const std::string& path, int64_t runs, double flops) {
        f.own[path] = flops;
        f.runs[path] = runs;
        f.configs[path] = &c;
      });
  return f;
}

// Elements of the matrices a config owns; a stack of expert biases [copies, out] is vectors.
double matrix_elements(const config::Config& c) {
  double n = 0;
  for (const auto& p : c.parameters())
    if (p.shape.size() >= 2 && p.name != "bias") n += static_cast<double>(p.numel());
  return n;
}

// Models that together hold every registered type: the zoo, plus what the zoo lacks.
std::vector<config::Document> samples() {
  std::vector<config::Document> docs;
  for (const auto& name : zoo_names()) docs.push_back(zoo(name));
  ModelText moe;
  moe.mixer = "{type: attention, heads: 4, rotary: {type: none}, qk_norm: {type: layer_norm}}";
  moe.mlp = "{type: moe, experts: 4, top_k: 2, intermediate_size: 32, shared_experts: 1}";
  docs.push_back(document(moe.text()));
  ModelText plain;
  plain.mixer = kAttention;
  plain.mlp = "{type: mlp, intermediate_size: 128}";
  plain.normalization = "{type: layer_norm}";
  docs.push_back(document(plain.text()));
  ModelText yarn;
  yarn.mixer =
      "{type: attention, heads: 4, rotary: {type: yarn, scale_factor: 4, original_context_length: "
      "16}}";
  docs.push_back(document(yarn.text()));
  docs.push_back(
      document("version: 1\nmodel:\n  type: language_model\n  hidden_size: 64\n"
               "  embeddings: {vocab_size: 100}\n  decoder:\n    type: fixed\n    blocks:\n"
               "      - type: transformer\n"
               "        mixer: {type: attention, heads: 4, rotary: {type: llama3, theta: 10000.0, "
               "original_context_length: 16}}\n"
               "        mlp: {type: mlp, intermediate_size: 128}\n"
               "        normalization: {type: rms_norm}\n"
               "  head:\n    normalization: {type: rms_norm}\n"));
  // Resamplers (a perceiver, then Kosmos-2's latent attention) and a fusion embedding.
  docs.push_back(document(
      "version: 1\nmodel:\n  type: early_fusion\n  decoder:\n    type: language_model\n"
      "    hidden_size: 32\n    embeddings: {vocab_size: 50}\n    decoder:\n"
      "      type: repeat\n      num_layers: 1\n      block:\n        type: transformer\n"
      "        mixer: {type: attention, heads: 4, rotary: {type: default}}\n"
      "        mlp: {type: gated, intermediate_size: 64}\n"
      "        normalization: {type: rms_norm}\n"
      "    head: {normalization: {type: rms_norm}}\n"
      "  encoders:\n    image:\n      encoder:\n        type: vision_transformer\n"
      "        hidden_size: 24\n        image_size: 8\n        patch_size: 4\n"
      "        patch_bias: true\n        body:\n          type: repeat\n"
      "          num_layers: 1\n          block:\n            type: transformer\n"
      "            mixer: {type: attention, heads: 2, causal: false}\n"
      "            mlp: {type: mlp, intermediate_size: 48}\n"
      "            normalization: {type: layer_norm}\n"
      "      connectors:\n        - {type: perceiver_resampler, num_latents: 3, depth: 2}\n"
      "        - {type: latent_attention, num_latents: 2, heads: 2}\n"
      "        - {type: linear}\n"
      "  encoder_tokens: {image: 50}\n  fusion_vocab_size: 1\n"));
  // A tower alone.
  docs.push_back(document(
      "version: 1\nmodel:\n  type: encoder_model\n  encoder:\n    type: vision_transformer\n"
      "    hidden_size: 24\n    image_size: 8\n    patch_size: 4\n    body:\n"
      "      type: repeat\n      num_layers: 1\n      block:\n        type: transformer\n"
      "        mixer: {type: attention, heads: 2, causal: false}\n"
      "        mlp: {type: mlp, intermediate_size: 48}\n"
      "        normalization: {type: layer_norm}\n"));
  return docs;
}

// Every config type that can sit in a model (registered types and the structs they hold).
std::vector<const config::TypeInfo*> every_type() {
  std::vector<const config::TypeInfo*> out;
  std::vector<const config::TypeInfo*> pending = registry().all_types();
  while (!pending.empty()) {
    const config::TypeInfo* t = pending.back();
    pending.pop_back();
    if (std::find(out.begin(), out.end(), t) != out.end()) continue;
    out.push_back(t);
    for (const auto& f : t->fields)
      for (const config::TypeInfo* n : f.nested()) pending.push_back(n);
  }
  return out;
}

// The invariants of the rule in framework/config/config.h, for an instance of every type: a
// config pays 2 FLOPs per element of every matrix it owns, except weights their owner declares
// looked up (listed here, so that a new one is a visible decision) and experts a token skips;
// a mixer mixes tokens, which costs something beyond its projections; and only attention
// depends on the context.
TEST(Summary, EveryTypeAnswersForItsOwnComputation) {
  // Looked up or added, not multiplied: tables, class tokens, latents.
  const std::set<std::string> looked_up = {"embeddings.word",
                                           "embeddings.position",
                                           "mixer.a_log",
                                           "encoder.patch_embedding_bias",
                                           "encoder.class_embedding",
                                           "encoder.position_embedding",
                                           "model.fusion_embedding",
                                           "connectors[0].latents",
                                           "connectors[0].media_position",
                                           "connectors[1].latents"};
  std::set<std::string> seen;
  for (const auto& doc : samples()) {
    const Flops short_context = flops_of(*doc.model, 64);
    const Flops f = flops_of(*doc.model, 4096);
    for (const auto& [path, c] : f.configs) {
      seen.insert(c->type().kind + "/" + c->type().name);
      const double own = f.own.at(path);
      EXPECT_GE(own, 0) << path;
      const double matrices = matrix_elements(*c);
      const std::string tail = path.substr(path.rfind('.', path.rfind('.') - 1) + 1);
      if (const auto* weight = dynamic_cast<const WeightConfig*>(c);
          weight && !weight->multiplied) {
        EXPECT_TRUE(looked_up.count(tail)) << path << " is declared looked up";
        EXPECT_EQ(own, 0) << path;
      } else if (const auto* linear = dynamic_cast<const LinearConfig*>(c);
                 linear && linear->active_copies && *linear->active_copies < linear->copies) {
        EXPECT_GE(own, 2 * matrices * *linear->active_copies / linear->copies) << path;
        EXPECT_LT(own, 2 * matrices) << path;
      } else {
        EXPECT_GE(own, 2 * matrices) << path << " (" << c->type().name << ")";
      }
      if (c->type().kind == "mixer") {
        EXPECT_GT(own, 2 * matrices) << path;
      }
      if (c->type().name != "attention") {
        EXPECT_EQ(short_context.own.at(path), own) << path;
      }
    }
  }
  for (const auto* t : every_type())
    // Initializations cost nothing per token; PEFT targets are a shortcut that resolution
    // expands into the linears' apply_peft, so no resolved tree holds one; schedules belong
    // to a run's `train:` section, not to a model.
    EXPECT_TRUE(seen.count(t->kind + "/" + t->name) || t->kind == "initialization" ||
                t->kind == "schedule" || t->name == "peft_target")
        << t->name << " (" << t->kind << ") appears in no sample model: add one to samples()";
}

TEST(Summary, AttentionCountsGroupedHeadsOfTheirOwnSizeInsideTheWindow) {
  ModelText text;
  text.mixer =
      "{type: attention, heads: 4, head_groups: 2, head_size: 24, window_size: 100, "
      "rotary: {type: none}}";
  const config::Document doc = document(text.text());
  const double hidden = 64, heads = 4, groups = 2, size = 24;
  // q, k, v and o: hidden -> heads x size, 2 x hidden -> groups x size, heads x size -> hidden.
  const double projections =
      2 * (hidden * heads * size + 2 * hidden * groups * size + heads * size * hidden);
  for (const auto& [context, span] : {std::pair<double, double>{300, 100}, {50, 50}}) {
    const Flops f = flops_of(*doc.model, static_cast<int64_t>(context));
    // Scores q.k and the weighted sum of values: span x size MACs per query head each.
    const double scores = 2 * 2 * span * heads * size;
    EXPECT_EQ(f.own.at("model.decoder.block.mixer"), scores) << context;
    EXPECT_EQ(f.below("model.decoder.block.mixer"), projections + scores) << context;
    EXPECT_EQ(f.runs.at("model.decoder.block.mixer"), 2);
  }
}

TEST(Summary, MoeCountsTheRouterTheTopKExpertsAndTheSharedExperts) {
  ModelText text;
  text.mixer = kAttention;
  text.mlp =
      "{type: moe, experts: 8, top_k: 2, intermediate_size: 32, shared_experts: 1, "
      "shared_intermediate_size: 48}";
  const config::Document doc = document(text.text());
  const Flops f = flops_of(*doc.model, 2048);
  const double hidden = 64, experts = 8, top_k = 2, width = 32, shared = 48;
  const double router = 2 * hidden * experts;
  const double routed = top_k * 3 * 2 * hidden * width;  // gate, up, down of each chosen expert
  const double always = 3 * 2 * hidden * shared;
  EXPECT_EQ(f.own.at("model.decoder.block.mlp.router"), router);
  EXPECT_EQ(f.own.at("model.decoder.block.mlp.up"), top_k * 2 * hidden * width);
  EXPECT_EQ(f.below("model.decoder.block.mlp"), router + routed + always);
  // All eight experts' weights exist; a token pays for two.
  const double all_experts = experts * 3 * hidden * width;
  EXPECT_EQ(matrix_elements(*f.configs.at("model.decoder.block.mlp.gate")) * 3, all_experts);
}

TEST(Summary, MambaCountsItsProjectionsConvolutionAndScan) {
  ModelText text;
  text.mixer = "{type: mamba, state_size: 16, conv_kernel_size: 4, expansion: 2}";
  const config::Document doc = document(text.text());
  const Flops f = flops_of(*doc.model, 2048);
  const double hidden = 64, inner = 2 * hidden, state = 16, kernel = 4, rank = 4;  // ceil(64/16)
  const double projections = 2 * (hidden * 2 * inner            // in_proj: x and z
                                  + inner * (rank + 2 * state)  // x_proj: dt, B, C
                                  + rank * inner                // dt_proj
                                  + inner * hidden);            // out_proj
  const double convolution = 2 * inner * kernel;                // depthwise, per channel
  const double scan = 2 * 3 * inner * state;  // dA * h + dB * x, then C . h, per channel and state
  EXPECT_EQ(f.own.at("model.decoder.block.mixer"), scan);
  EXPECT_EQ(f.own.at("model.decoder.block.mixer.conv"), convolution);
  EXPECT_EQ(f.own.at("model.decoder.block.mixer.a_log"), 0);
  EXPECT_EQ(f.below("model.decoder.block.mixer"), projections + convolution + scan);
}

TEST(Summary, HeadsMultiplyByTheVocabularyMatrixTiedOrNot) {
  ModelText text;
  text.mixer = kAttention;
  const double logits = 2 * 100 * 64;  // vocab x hidden
  const config::Document untied = document(text.text());
  Flops f = flops_of(*untied.model, 2048);
  EXPECT_EQ(f.below("model.head"), logits);
  EXPECT_EQ(f.own.at("model.head.output"), logits);
  EXPECT_EQ(f.below("model.embeddings"), 0);  // lookups
  const config::Document tied =
      document(replace(text.text(), "  head:\n", "  head:\n    tied: true\n"));
  f = flops_of(*tied.model, 2048);
  EXPECT_EQ(f.own.at("model.head"), logits);
  EXPECT_EQ(f.below("model.head"), logits);
}

// Weights shared across positions count once as parameters, but each position still computes.
TEST(Summary, SharedBlocksComputeAtEveryPosition) {
  const std::string yaml = shared_pattern_model();
  const config::Document shared = document(yaml);
  const config::Document separate = document(replace(yaml, "    shared: [s]\n", ""));
  EXPECT_LT(config::count_parameters(*shared.model).total,
            config::count_parameters(*separate.model).total);
  const Flops f = flops_of(*shared.model, 2048);
  EXPECT_EQ(f.total, flops_of(*separate.model, 2048).total);
  EXPECT_EQ(f.runs.at("model.decoder.blocks.s.mixer"), 2);
  // One block: 2 x (q, k, v, o: 4 x 64 x 64 + gate, up, down: 3 x 64 x 128) + 4 x 2048 x 64.
  const double block_flops = 2 * (4 * 64 * 64 + 3 * 64 * 128) + 4 * 2048 * 64;
  EXPECT_EQ(f.total, 4 * block_flops + 2 * 100 * 64);
}

// summary's FLOPs are the configs' own, summed; its parameter, trainable and tensor counts come
// from the config layer and must be what the builder makes (the meta-device table).
TEST(Summary, TotalsAreTheSumOfTheConfigsAndWhatTheBuilderMakes) {
  for (const auto& name : zoo_names()) {
    const config::Document doc = zoo(name);
    const Model model = build_model(*doc.model, at::TensorOptions().device(at::kMeta));
    int64_t parameters = 0, trainable = 0;
    for (const auto& record : model.parameters) {
      parameters += record.numel();
      if (record.trainable) trainable += record.numel();
    }
    for (const int64_t context : {2048, 32768}) {
      const SummaryTotals totals = summary_totals(*doc.model, context);
      // A fusion model's per-token figure is its decoder's; its encoders count per media item.
      double per_token = 0;
      for (const config::Config* part : dynamic_cast<const ModelConfig&>(*doc.model).per_token_parts())
        per_token += flops_of(*part, context).total;
      EXPECT_EQ(totals.flops_per_token, per_token)
          << name << " at context " << context;
      EXPECT_EQ(totals.parameters, parameters) << name;
      EXPECT_EQ(totals.trainable, trainable) << name;
      EXPECT_EQ(totals.tensors, static_cast<int64_t>(model.parameters.size())) << name;
    }
  }
}

}  // namespace
}  // namespace blocks::testing
