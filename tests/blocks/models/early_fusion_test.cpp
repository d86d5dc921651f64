// Early fusion from config: the CLIP-convention vision transformer and the LLaVA projector
// against plain-PyTorch references written from transformers' modeling_clip.py and
// modeling_llava.py (tests/support/vision_references.py); the fusion model against its decoder
// run on embeddings spliced by hand; the trainable toggles; every placeholder mismatch; the
// zoo's KOSMOS-1 (its count, torchscale's initialization, the tower frozen but its last layer).
#include <gtest/gtest.h>

#include <set>

#include "blocks/encoders/encoder_module.h"
#include "blocks/models/early_fusion_module.h"
#include "framework/config/emit.h"
#include "framework/config/parameters.h"
#include "tests/support/errors.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

// A tiny LLaVA: a 3-layer CLIP tower on 8x8 images of 4x4 patches (4 patches and a class
// token), features of layer 2 (-2) without the class token, a 2-layer GELU projector, and a
// Llama-shaped decoder of 50 tokens; placeholder 49.
std::string llava_text(const std::string& extra = "", const std::string& tower_extra = "") {
  return "version: 1\n"
         "model:\n"
         "  type: early_fusion\n"
         "  decoder:\n"
         "    type: language_model\n"
         "    hidden_size: 32\n"
         "    embeddings: {vocab_size: 50}\n"
         "    decoder:\n"
         "      type: repeat\n"
         "      num_layers: 2\n"
         "      block:\n"
         "        type: transformer\n"
         "        mixer: {type: attention, heads: 4, rotary: {type: default}}\n"
         "        mlp: {type: gated, intermediate_size: 64}\n"
         "        normalization: {type: rms_norm}\n"
         "    head: {normalization: {type: rms_norm}}\n"
         "  encoders:\n"
         "    image:\n"
         "      encoder:\n"
         "        type: vision_transformer\n"
         "        hidden_size: 24\n"
         "        image_size: 8\n"
         "        patch_size: 4\n"
         "        pre_normalization: {type: layer_norm}\n"
         "        body:\n"
         "          type: repeat\n"
         "          num_layers: 3\n"
         "          block:\n"
         "            type: transformer\n"
         "            add_linear_biases: true\n"
         "            mixer: {type: attention, heads: 2, causal: false}\n"
         "            mlp: {type: mlp, intermediate_size: 48, activation: quick_gelu}\n"
         "            normalization: {type: layer_norm}\n"
         "        feature_layers: [-2]\n"
         "        drop_class_token: true\n" +
         tower_extra +
         "      connectors:\n"
         "        - {type: mlp}\n"
         "  encoder_tokens: {image: 49}\n" +
         extra;
}

std::map<std::string, at::Tensor> with_prefix(const Model& model, const std::string& prefix) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : model.parameters)
    if (p.name.rfind(prefix, 0) == 0) out[p.name.substr(prefix.size())] = p.tensor.detach();
  return out;
}

at::Tensor pixels(int64_t images, int64_t side = 8, uint64_t seed = 7) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn({images, 3, side, side}, gen);
}

EarlyFusionModel& fusion(const Model& model) {
  return dynamic_cast<EarlyFusionModel&>(*model.module);
}

// ---------------------------------------------------------------------------------------------
// Resolution

TEST(VisionTransformer, BuildsOnlyTheLayersItsFeaturesUse) {
  const config::Json doc = resolved(llava_text());
  const auto& vit = doc["model"]["encoders"]["image"]["encoder"];
  EXPECT_EQ(vit["num_layers"], 3);          // the depth as written stays on record
  EXPECT_EQ(vit["body"]["num_layers"], 2);  // layer 3 would never compute
  EXPECT_EQ(doc["model"]["encoders"]["image"]["tokens"], 4);
  const auto& projector = doc["model"]["encoders"]["image"]["connectors"][0];
  EXPECT_EQ(projector["input_width"], 24);
  EXPECT_EQ(projector["output_width"], 32);
  EXPECT_EQ(projector["hidden_size"], 32);
  // Resolving the resolved text again changes nothing (the cut is not applied twice).
  EXPECT_EQ(resolved(config::to_yaml(doc)), doc);

  const Model model = build_text(llava_text());
  std::set<std::string> layers;
  for (const auto& p : model.parameters) {
    const std::string prefix = "encoders.image.encoder.body.";
    if (p.name.rfind(prefix, 0) == 0) layers.insert(p.name.substr(prefix.size(), 1));
  }
  EXPECT_EQ(layers, (std::set<std::string>{"0", "1"}));
  // 24 * 3 * 4 * 4 patch weights, a class token, 5 positions, the pre-norm; per layer 4 biased
  // 24x24 projections, two layer norms, and a 24 -> 48 -> 24 biased MLP.
  int64_t tower = 0;
  for (const auto& p : model.parameters)
    if (p.name.rfind("encoders.image.encoder.", 0) == 0) tower += p.numel();
  const int64_t per_layer = 4 * (24 * 24 + 24) + 2 * 2 * 24 + (24 * 48 + 48) + (48 * 24 + 24);
  EXPECT_EQ(tower, 24 * 3 * 16 + 24 + 5 * 24 + 2 * 24 + 2 * per_layer);
}

TEST(VisionTransformer, ReportsBadFeatureSelection) {
  EXPECT_EQ(errors(replace(llava_text(), "feature_layers: [-2]", "feature_layers: [4, -5]")),
            "test.yaml:34:26: error: model.encoders.image.encoder.feature_layers[0]: index 4 is "
            "outside the 4 hidden states (0..3, or -4..-1)\n"
            "test.yaml:34:29: error: model.encoders.image.encoder.feature_layers[1]: index -5 is "
            "outside the 4 hidden states (0..3, or -4..-1)\n");
  EXPECT_EQ(errors(replace(llava_text(), "feature_layers: [-2]", "feature_layers: [0]")),
            "test.yaml:34:25: error: model.encoders.image.encoder.feature_layers: selects only "
            "the embeddings (index 0): the body would never compute\n");
  EXPECT_EQ(errors(replace(llava_text(), "image_size: 8", "image_size: 9")),
            "test.yaml:23:21: error: model.encoders.image.encoder.patch_size: image_size 9 is not "
            "a multiple of patch_size 4\n");
  EXPECT_EQ(errors(replace(llava_text(), "connectors:\n        - {type: mlp}\n", "connectors: []\n")),
            "test.yaml:20:9: error: model.encoders.image.encoder: features of width 24 reach the "
            "decoder, which takes 32; add a connector (e.g. {type: linear})\n");
  EXPECT_EQ(errors(replace(llava_text(), "- {type: mlp}", "- {type: perceiver_resampler}")),
            "test.yaml:37:9: error: model.encoders.image.connectors: features of width 24 reach "
            "the decoder, which takes 32\n");
}

TEST(EarlyFusion, DictKeysMustMatchTheEncoders) {
  const std::string text = replace(llava_text("  encoders_trainable: {image: true, imag: false}\n"
                                              "  begin_tokens: {video: 3}\n"),
                                   "encoder_tokens: {image: 49}", "encoder_tokens: {imag: 49}");
  EXPECT_EQ(errors(text),
            "test.yaml:18:5: error: model.encoders.image: encoder 'image' has no entry in "
            "encoder_tokens\n"
            "test.yaml:38:20: error: model.encoder_tokens.imag: 'imag' is not an encoder; did you "
            "mean 'image'? (encoders: image)\n"
            "test.yaml:39:37: error: model.encoders_trainable.imag: 'imag' is not an encoder; did "
            "you mean 'image'? (encoders: image)\n"
            "test.yaml:40:18: error: model.begin_tokens.video: 'video' is not an encoder "
            "(encoders: image)\n");
}

TEST(EarlyFusion, SpecialTokensNeedRowsOfTheirOwn) {
  EXPECT_EQ(errors(replace(llava_text("  end_tokens: {image: 60}\n"), "{image: 49}\n",
                           "{image: -1}\n")),
            "test.yaml:38:20: error: model.encoder_tokens.image: token id -1 has no embedding "
            "row: the decoder's table holds ids 0..49 (fusion_vocab_size adds rows after it)\n"
            "test.yaml:39:16: error: model.end_tokens.image: token id 60 has no embedding row: "
            "the decoder's table holds ids 0..49 (fusion_vocab_size adds rows after it)\n");
  EXPECT_EQ(errors(llava_text("  begin_tokens: {image: 49}\n")),
            "test.yaml:39:18: error: model.begin_tokens.image: token id 49 is also "
            "encoder_tokens.image; placeholders and markers need ids of their own\n");
  // Rows past the decoder's table come from the fusion embedding.
  EXPECT_EQ(errors(replace(llava_text("  fusion_vocab_size: 2\n  begin_tokens: {image: 51}\n"),
                           "{image: 49}\n", "{image: 50}\n")),
            "");
}

// ---------------------------------------------------------------------------------------------
// Trainable toggles

TEST(EarlyFusion, TogglesResolveIntoEveryParameter) {
  const auto trainable_of = [](const Model& model) {
    std::map<std::string, std::set<bool>> parts;
    for (const auto& p : model.parameters)
      parts[p.name.substr(0, p.name.find('.'))].insert(p.trainable);
    return parts;
  };
  using Parts = std::map<std::string, std::set<bool>>;
  // Defaults: towers frozen, decoder and fusion parameters training (LLaVA's second stage).
  const Model defaults = build_text(llava_text());
  EXPECT_EQ(trainable_of(defaults), (Parts{{"decoder", {true}}, {"encoders", {false, true}}}));
  for (const auto& p : defaults.parameters) {
    const bool connector = p.name.rfind("encoders.image.connectors.", 0) == 0;
    if (p.name.rfind("encoders.", 0) == 0) EXPECT_EQ(p.trainable, connector) << p.name;
  }
  // Stage one: only the projector and the fusion rows train.
  const Model stage1 = build_text(llava_text(
      "  decoder_trainable: false\n  fusion_vocab_size: 2\n  lr_scale: 0.5\n"));
  for (const auto& p : stage1.parameters) {
    const bool fusion = p.name.rfind("encoders.image.connectors.", 0) == 0 ||
                        p.name == "fusion_embedding.weight";
    EXPECT_EQ(p.trainable, fusion) << p.name;
    EXPECT_EQ(p.lr_scale, 0.5) << p.name;  // frozen parameters still show their scale
  }
  // One boolean sets every encoder, and resolves into a dict; fusion can be frozen too.
  const config::Json doc =
      resolved(llava_text("  encoders_trainable: true\n  fusion_trainable: false\n"));
  EXPECT_EQ(doc["model"]["encoders_trainable"], (config::Json{{"image", true}}));
  const Model tower = build_text(llava_text("  encoders_trainable: true\n  fusion_trainable: false\n"));
  for (const auto& p : tower.parameters) {
    const bool connector = p.name.rfind("encoders.image.connectors.", 0) == 0;
    EXPECT_EQ(p.trainable, !connector) << p.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Against references

TEST(VisionTransformer, MatchesClipVisionHiddenStates) {
  if (!have_reference_python()) GTEST_SKIP() << "python3 with torch is not installed";
  // Layers 0 (embeddings) and 3 (last) concatenated, class token kept, and the same tower at
  // 12x12 with its position table resized bicubically.
  const std::string text = replace(replace(llava_text(), "feature_layers: [-2]",
                                           "feature_layers: [0, -1]\n        "
                                           "interpolate_positions: true"),
                                   "        drop_class_token: true\n", "");
  const Model model = build_text(replace(text, "- {type: mlp}", "- {type: linear}"));
  auto& encoder = *fusion(model).parts.at("image").encoder;
  const at::Tensor small = pixels(2), large = pixels(1, 12, 9);
  const at::Tensor features = encoder.forward(small), resized = encoder.forward(large);
  ASSERT_EQ(features.sizes(), (at::IntArrayRef{2, 5, 48}));
  ASSERT_EQ(resized.sizes(), (at::IntArrayRef{1, 10, 48}));
  auto inputs = with_prefix(model, "encoders.image.encoder.");
  inputs["pixels"] = small;
  inputs["large"] = large;
  const auto ref = run_reference(R"(
from vision_references import clip_hidden_states
p = {k: v for k, v in inputs.items()}
out = {}
for name in ["pixels", "large"]:
    states = clip_hidden_states(p, inputs[name], patch=4, layers=3, heads=2, interpolate=True)
    out[name] = torch.cat([states[0], states[-1]], dim=-1)
save(out, OUTPUT)
)",
                                 inputs);
  ASSERT_EQ(ref.size(), 2u);
  EXPECT_TRUE(close(features, ref.at("pixels"), 1e-5, 1e-5));
  EXPECT_TRUE(close(resized, ref.at("large"), 1e-5, 1e-5));
}

TEST(EarlyFusion, LlavaFeaturesMatchTheReferenceProjector) {
  if (!have_reference_python()) GTEST_SKIP() << "python3 with torch is not installed";
  const Model model = build_text(llava_text());
  std::map<std::string, at::Tensor> features;
  const at::Tensor tokens = at::tensor({1, 49, 49, 49, 49, 2}, at::kLong).view({1, 6});
  fusion(model).embed(tokens, {{"image", pixels(1)}}, &features);
  auto inputs = with_prefix(model, "encoders.image.");
  inputs["pixels"] = pixels(1);
  const auto ref = run_reference(R"(
from vision_references import clip_hidden_states, llava_projector, sub
p = dict(inputs)
states = clip_hidden_states(sub(p, "encoder."), inputs["pixels"], patch=4, layers=2, heads=2)
# LLaVA's `default` strategy: hidden_states[-2] of the 3-layer tower, class token dropped.
save({"features": llava_projector(sub(p, "connectors.0."), states[2][:, 1:])}, OUTPUT)
)",
                                 inputs);
  ASSERT_EQ(ref.size(), 1u);
  EXPECT_TRUE(close(features.at("image"), ref.at("features"), 1e-5, 1e-6));
}

// KOSMOS-1's pipeline (perceiver resampler to 3 latents, then a linear projection) and
// Kosmos-2's (a biased linear, then latent attention), each against its reference.
TEST(EarlyFusion, ResamplersMatchFlamingoAndKosmos2) {
  if (!have_reference_python()) GTEST_SKIP() << "python3 with torch is not installed";
  const std::string kosmos1 = replace(
      llava_text(), "        - {type: mlp}\n",
      "        - {type: perceiver_resampler, num_latents: 3, depth: 2, heads: 2, head_size: 8}\n"
      "        - {type: linear}\n");
  const std::string kosmos2 =
      replace(llava_text(), "        - {type: mlp}\n",
              "        - {type: linear, bias: true}\n"
              "        - {type: latent_attention, num_latents: 3, heads: 4}\n");
  const config::Json doc = resolved(kosmos1);
  EXPECT_EQ(doc["model"]["encoders"]["image"]["tokens"], 3);
  EXPECT_EQ(doc["model"]["encoders"]["image"]["connectors"][0]["output_width"], 24);
  EXPECT_EQ(doc["model"]["encoders"]["image"]["connectors"][1]["input_width"], 24);
  EXPECT_EQ(resolved(kosmos2)["model"]["encoders"]["image"]["connectors"][1]["head_size"], 8);

  const at::Tensor tokens = at::tensor({1, 49, 49, 49, 2}, at::kLong).view({1, 5});
  std::map<std::string, at::Tensor> inputs;
  for (const auto& [name, text] : {std::pair{"k1", kosmos1}, std::pair{"k2", kosmos2}}) {
    const Model model = build_text(text);
    auto& part = fusion(model).parts.at("image");
    std::map<std::string, at::Tensor> features;
    fusion(model).embed(tokens, {{"image", pixels(1)}}, &features);
    inputs[std::string(name) + ".features"] = features.at("image");
    inputs[std::string(name) + ".tower"] = part.encoder->forward(pixels(1)).detach();
    for (const auto& [p, t] : with_prefix(model, "encoders.image.connectors."))
      inputs[std::string(name) + "." + p] = t;
  }
  const auto ref = run_reference(R"(
import torch.nn.functional as F
from vision_references import perceiver_resampler, kosmos2_latent_attention, sub
k1, k2 = sub(inputs, "k1."), sub(inputs, "k2.")
r1 = perceiver_resampler(sub(k1, "0."), k1["tower"], depth=2, heads=2)
r1 = F.linear(r1, k1["1.projection.weight"])
h2 = F.linear(k2["tower"], k2["0.projection.weight"], k2["0.projection.bias"])
r2 = kosmos2_latent_attention(sub(k2, "1."), h2, heads=4)
save({"k1": r1, "k2": r2}, OUTPUT)
)",
                                 inputs);
  ASSERT_EQ(ref.size(), 2u);
  EXPECT_TRUE(close(inputs.at("k1.features"), ref.at("k1"), 1e-5, 1e-6));
  EXPECT_TRUE(close(inputs.at("k2.features"), ref.at("k2"), 1e-5, 1e-6));
}

// ---------------------------------------------------------------------------------------------
// The fused forward

TEST(EarlyFusion, EqualsItsDecoderOnEmbeddingsSplicedByHand) {
  const Model model = build_text(llava_text("  fusion_vocab_size: 3\n"));
  auto& m = fusion(model);
  // Row 0: two images back to back, then text; row 1: text, one image, a fusion-row token.
  const at::Tensor tokens =
      at::tensor({1, 49, 49, 49, 49, 49, 49, 49, 49, 5, 7, 9,     //
                  3, 4, 49, 49, 49, 49, 8, 51, 6, 2, 52, 1},
                 at::kLong)
          .view({2, 12});
  const at::Tensor images = pixels(3);
  ModelInput input;
  input.tokens = tokens;
  input.named["pixel_values"] = images;
  const at::Tensor logits = m.forward(input).logits;

  // By hand: each image through the tower and projector alone, written over its four rows.
  at::Tensor features = m.parts.at("image").encoder->forward(images);
  features = m.parts.at("image").connectors.at(0)->forward(features);  // [3, 4, 32]
  const at::Tensor word = m.decoder->embeddings->word->weight.detach();
  const at::Tensor extra = m.fusion_embedding->weight.detach();
  at::Tensor spliced = at::zeros({2, 12, 32});
  const int64_t slots[3][2] = {{0, 1}, {0, 5}, {1, 2}};  // row, first placeholder
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t t = 0; t < 12; ++t) {
      const int64_t id = tokens[r][t].item<int64_t>();
      spliced[r][t] = id < 50 ? word[id] : extra[id - 50];
    }
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 4; ++k) spliced[slots[i][0]][slots[i][1] + k] = features[i][k];
  const at::Tensor expected = m.decoder->forward(ModelInput{.embeddings = spliced}).logits;
  EXPECT_TRUE(close(logits, expected, 1e-5, 1e-6));
  // The placeholder rows of the table take no part: changing them changes nothing.
  {
    at::NoGradGuard no_grad;
    m.decoder->embeddings->word->weight[49].fill_(100);
  }
  EXPECT_TRUE(close(m.forward(input).logits, logits, 0, 0));
}

TEST(EarlyFusion, DecodingAfterAMultimodalPrefillEqualsTheFullForward) {
  const Model model = build_text(llava_text());
  auto& m = fusion(model);
  const at::Tensor tokens =
      at::tensor({1, 49, 49, 49, 49, 5, 7, 9, 11, 13}, at::kLong).view({1, 10});
  ModelInput full;
  full.tokens = tokens;
  full.named["pixel_values"] = pixels(1);
  const at::Tensor expected = m.forward(full).logits;
  DecodeCache cache = m.make_cache(10);
  ModelInput prefill;
  prefill.tokens = tokens.slice(1, 0, 7);
  prefill.named["pixel_values"] = pixels(1);
  prefill.cache = &cache;
  std::vector<at::Tensor> pieces = {m.forward(prefill).logits};
  for (int64_t t = 7; t < 10; ++t) {
    ModelInput step;
    step.tokens = tokens.slice(1, t, t + 1);
    step.cache = &cache;
    pieces.push_back(m.forward(step).logits);
  }
  EXPECT_TRUE(close(at::cat(pieces, 1), expected, 1e-5, 1e-5));
}

TEST(EarlyFusion, FloatPixelsEnterABfloat16Tower) {
  const Model model = build_text(llava_text(), at::kBFloat16);
  ModelInput input;
  input.tokens = at::tensor({1, 49, 49, 49, 49, 2}, at::kLong).view({1, 6});
  input.named["pixel_values"] = pixels(1);  // float32
  const at::Tensor logits = fusion(model).forward(input).logits;
  EXPECT_EQ(logits.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::isfinite(logits).all().item<bool>());
}

// ---------------------------------------------------------------------------------------------
// Bad input

std::string forward_error(const Model& model, const std::vector<int64_t>& ids, int64_t rows,
                          const at::Tensor& media) {
  ModelInput input;
  input.tokens = at::tensor(ids, at::kLong).view({rows, -1});
  if (media.defined()) input.named["pixel_values"] = media;
  return message_of<nn::InputError>([&] { fusion(model).forward(input); });
}

TEST(EarlyFusion, EveryPlaceholderMismatchNamesItemRowAndCounts) {
  const Model model = build_text(llava_text());
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 5, 6}, 1, pixels(1)),
            "model: batch row 0, tokens [1, 4): a run of 3 placeholders, but media item 0 of "
            "encoder 'image' fills exactly 4 placeholders (token 49) (too few placeholders, or a "
            "run split in two)");
  EXPECT_EQ(forward_error(model, {1, 49, 49, 5, 49, 49, 6, 7}, 1, pixels(1)),
            "model: batch row 0, tokens [1, 3): a run of 2 placeholders, but media item 0 of "
            "encoder 'image' fills exactly 4 placeholders (token 49) (too few placeholders, or a "
            "run split in two)");
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 49, 5, 49, 49, 49, 49, 6, 7}, 2, pixels(1)),
            "model: batch row 1, tokens [0, 4): placeholders for media item 1 of encoder "
            "'image', but 1 item was given");
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 49, 5}, 1, pixels(2)),
            "model: 2 media items were given to encoder 'image', but the tokens hold "
            "placeholders for 1: media item 1 has no run of 4 placeholders (token 49)");
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 49, 5}, 1, at::Tensor()),
            "model: batch row 0, tokens [1, 5): placeholders for media item 0 of encoder "
            "'image', but 0 items were given");
  EXPECT_EQ(forward_error(model, {1, 2, 3}, 1, pixels(1)),
            "model: 1 media items were given to encoder 'image', but the tokens hold "
            "placeholders for 0: media item 0 has no run of 4 placeholders (token 49)");
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 49, 5}, 1, pixels(1, 12)),
            "model.encoders.image.encoder: images of 12x12 pixels, but the encoder takes 8x8 "
            "(set interpolate_positions for other sizes)");
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 49, 5}, 1, at::zeros({1, 1, 8, 8})),
            "model.encoders.image.encoder: pixel_values have 1 channels, but the encoder takes 3 "
            "(shape [1, 1, 8, 8])");
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 49, 5}, 1, at::zeros({3, 8, 8})),
            "model: input `pixel_values` must have 4 dimensions, got shape [3, 8, 8]");
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 49, 50}, 1, pixels(1)),
            "model: token ids must lie in [0, 50), got values in [1, 50]");
}

TEST(EarlyFusion, MarkersMustBracketEachRun) {
  const Model model = build_text(replace(
      llava_text("  fusion_vocab_size: 2\n  begin_tokens: {image: 50}\n  end_tokens: {image: 51}\n"),
      "", ""));
  // Correct: <image> four placeholders </image>.
  ModelInput ok;
  ok.tokens = at::tensor({1, 50, 49, 49, 49, 49, 51, 2}, at::kLong).view({1, 8});
  ok.named["pixel_values"] = pixels(1);
  EXPECT_NO_THROW(fusion(model).forward(ok));
  EXPECT_EQ(forward_error(model, {1, 49, 49, 49, 49, 51, 2}, 1, pixels(1)),
            "model: batch row 0, tokens [1, 5): media item 0 of encoder 'image' is not preceded "
            "by its begin marker 50");
  EXPECT_EQ(forward_error(model, {50, 49, 49, 49, 49, 49, 49, 49, 49, 51}, 1, pixels(2)),
            "model: batch row 0, tokens [1, 9): a run of 8 placeholders, but media item 0 of "
            "encoder 'image' fills exactly 4 placeholders (token 49) between its markers");
  EXPECT_EQ(forward_error(model, {1, 50, 2, 49, 49, 49, 49, 51}, 1, pixels(1)),
            "model: batch row 0, token 1: the begin marker 50 of encoder 'image' is not followed "
            "by its placeholders");
}

TEST(EarlyFusion, DeclaresItsInputs) {
  const Model model = build_text(llava_text());
  std::vector<std::string> names;
  for (const auto& spec : model.module->inputs()) names.push_back(spec.name);
  EXPECT_EQ(names, (std::vector<std::string>{"tokens", "attention_mask", "positions",
                                             "pixel_values"}));
  EXPECT_EQ(model.module->inputs().back().doc,
            "images [images, 3, 8, 8] for encoder 'image', one item per run of 4 placeholders "
            "(token 49)");
}

// ---------------------------------------------------------------------------------------------
// configs/kosmos-1.yaml

TEST(Kosmos1, CountedFromTheYaml) {
  const config::Document doc = zoo("kosmos-1");
  const config::ParameterCount count = config::count_parameters(*doc.model);
  // torchscale's Decoder: embeddings, 24 layers (4 biased 2048x2048 projections, two pre-LNs,
  // the Sub-LN before out_proj [2048] and before fc2 [8192], fc1 and fc2 with biases), the final
  // LayerNorm, an untied output layer.
  const int64_t h = 2048, f = 8192, vocab = 32002;
  const int64_t layer = 4 * (h * h + h) + 2 * 2 * h + 2 * h + (h * f + f) + (f * h + h) + 2 * f;
  const int64_t decoder = vocab * h + 24 * layer + 2 * h + h * vocab;
  // CLIP ViT-L/14 at 224: patches without bias, class token, 257 positions, ln_pre, 24 layers.
  const int64_t w = 1024, m = 4096;
  const int64_t vit_layer = 4 * (w * w + w) + 2 * 2 * w + (w * m + m) + (m * w + w);
  const int64_t tower = 3 * 14 * 14 * w + w + 257 * w + 2 * w + 24 * vit_layer;
  // flamingo_pytorch's PerceiverResampler(dim 1024, depth 2, dim_head 64, heads 8, 64
  // latents): latents, one media position row, per layer norm_media, norm_latents, to_q,
  // to_kv, to_out and the feed-forward (LayerNorm, 1024 -> 4096 -> 1024 without biases); the
  // final norm. Then image_proj 1024 -> 2048, and the placeholder's fusion row.
  const int64_t inner = 8 * 64;
  const int64_t perceiver_layer = 2 * 2 * w + 3 * w * inner + inner * w + 2 * w + 2 * w * m;
  const int64_t resampler = 64 * w + w + 2 * perceiver_layer + 2 * w;
  EXPECT_EQ(count.total, decoder + tower + resampler + w * h + h);
  EXPECT_EQ(count.total, 1666503680);
  // Trainable: everything but the tower, whose last layer alone trains.
  EXPECT_EQ(count.trainable, count.total - tower + vit_layer);
}

// A KOSMOS-1 shrunk where the test needs it (the decoder to 4 layers of 128, the tower to two
// layers of 64 on 28-pixel images); the rest as the zoo has it.
Model small_kosmos(uint64_t seed = 3) {
  config::LoadOptions options;
  options.sets = {"model.decoder.hidden_size=128",
                  "model.decoder.decoder.num_layers=4",
                  "model.decoder.decoder.block.mixer.heads=4",
                  "model.decoder.decoder.block.mlp.intermediate_size=256",
                  "model.encoders.image.encoder.hidden_size=64",
                  "model.encoders.image.encoder.image_size=28",
                  "model.encoders.image.encoder.body.num_layers=2",
                  "model.encoders.image.encoder.body.block.mixer.heads=4",
                  "model.encoders.image.encoder.body.block.mlp.intermediate_size=128",
                  // null first: a mapping given by --set merges into the one written.
                  "model.encoders.image.encoder.body.overrides=null",
                  "model.encoders.image.encoder.body.overrides={1: {lr_scale: 1.0}}"};
  const config::Document doc = zoo("kosmos-1", options);
  Model model = build_model(*doc.model);
  nn::initialize(model.parameters, seed);
  return model;
}

const nn::ParameterRecord& find_record(const Model& model, const std::string& name) {
  for (const auto& p : model.parameters)
    if (p.name == name) return p;
  throw std::runtime_error("no parameter " + name);
}

// torchscale (architecture/decoder.py, component/multihead_attention.py): nn.Linear's own
// U(+-1/sqrt(fan_in)) for weights and biases, as reset_parameters is never called; then
// fc1, fc2, out_proj and v_proj multiplied by sqrt(log(2N)), N = 4 here.
TEST(Kosmos1, InitializationIsTorchscales) {
  const Model model = small_kosmos();
  const double gamma = std::sqrt(std::log(8.0));
  struct Expected {
    std::string name;
    double bound;
  };
  const std::vector<Expected> expected = {
      {"query", 1 / std::sqrt(128.0)},       {"key", 1 / std::sqrt(128.0)},
      {"value", gamma / std::sqrt(128.0)},   {"output", gamma / std::sqrt(128.0)},
      {"mlp.up", gamma / std::sqrt(128.0)},  {"mlp.down", gamma / std::sqrt(256.0)},
  };
  for (int layer : {0, 3})
    for (const auto& e : expected)
      for (const char* part : {"weight", "bias"}) {
        const std::string name = "decoder.decoder." + std::to_string(layer) + "." +
                                 (e.name.rfind("mlp.", 0) == 0 ? e.name : "mixer." + e.name) +
                                 "." + part;
        const at::Tensor t = find_record(model, name).tensor;
        const double largest = t.abs().max().item<double>();
        EXPECT_LE(largest, e.bound * (1 + 1e-6)) << name;
        EXPECT_GT(largest, 0.95 * e.bound) << name;
        if (std::string(part) == "weight")
          EXPECT_NEAR(t.std().item<double>(), e.bound / std::sqrt(3.0), 0.02 * e.bound) << name;
      }
  // The output layer and image_proj: N(0, 2048^-0.5), whatever the shrunk width.
  EXPECT_NEAR(find_record(model, "decoder.head.output.weight").tensor.std().item<double>(),
              std::pow(2048.0, -0.5), 2e-4);
  EXPECT_NEAR(find_record(model, "encoders.image.connectors.1.projection.weight")
                  .tensor.std()
                  .item<double>(),
              std::pow(2048.0, -0.5), 5e-4);
  // Sub-LN norms start at ones.
  EXPECT_TRUE(at::equal(find_record(model, "decoder.decoder.0.sub_normalization.1.weight").tensor,
                        at::ones({256})));
}

TEST(Kosmos1, TheTowerTrainsOnlyItsLastLayer) {
  const Model model = small_kosmos();
  std::vector<std::string> trainable_tower;
  for (const auto& p : model.parameters) {
    if (p.name.rfind("encoders.image.encoder.", 0) == 0) {
      if (p.trainable) trainable_tower.push_back(p.name.substr(23));
    } else {
      EXPECT_TRUE(p.trainable) << p.name;  // decoder, connectors, fusion row
    }
  }
  EXPECT_FALSE(trainable_tower.empty());
  for (const auto& name : trainable_tower) EXPECT_EQ(name.rfind("body.1.", 0), 0u) << name;
  EXPECT_EQ(trainable_tower.size(), 16u);  // 4 biased projections, 2 norms, 2 biased linears
}

// <s> <image> 64 placeholders </image> text: the latents land between the markers.
TEST(Kosmos1, RunsOnMarkedImages) {
  Model model = small_kosmos();
  model.module->eval();
  std::vector<int64_t> ids = {1, 32000};
  ids.insert(ids.end(), 64, 32002);
  ids.insert(ids.end(), {32001, 5, 6, 7});
  ModelInput input;
  input.tokens = at::tensor(ids, at::kLong).view({1, -1});
  input.named["pixel_values"] = pixels(1, 28);
  const at::Tensor logits = fusion(model).forward(input).logits;
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 70, 32002}));
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
  // The image matters: other pixels, other logits after the markers.
  input.named["pixel_values"] = pixels(1, 28, 8);
  EXPECT_FALSE(close(fusion(model).forward(input).logits.narrow(1, 66, 4),
                     logits.narrow(1, 66, 4), 1e-4, 1e-4));
}

}  // namespace
}  // namespace blocks::testing
