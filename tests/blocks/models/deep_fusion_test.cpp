// Deep fusion from config: a tiny Llama decoder with gated cross-attention layers into a
// features encoder, against a plain-PyTorch reference written from torchtune's
// TransformerCrossAttentionLayer (torchtune/modules/transformer.py: both branches zeroed for
// tokens with no attendable memory), Hugging Face's MllamaCrossAttentionDecoderLayer
// (modeling_mllama.py: such rows attend to the whole memory and only the MLP is zeroed) and
// open_flamingo's MaskedCrossAttention (helpers.py: only the attention is zeroed), each placement;
// zero gates give the decoder bit for bit; cached decoding equals the full forward; the
// trainable toggles; the zoo's Llama 3.2 Vision counted by hand; every bad input named.
#include <gtest/gtest.h>

#include "blocks/models/deep_fusion_module.h"
#include "framework/config/parameters.h"
#include "framework/weights/load.h"
#include "framework/weights/safetensors.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

// A 4-layer Llama-shaped decoder (32 wide, 4 heads in 2 groups, 50 tokens), features of width 12
// (3 per item) through a linear projector to 32 when `projector`, else read at width 12; fusion
// layers at decoder layers 1 and 3, with q/k RMSNorm.
std::string fusion_text(const std::string& placement = "before",
                        const std::string& rows = "skip", bool projector = true,
                        const std::string& gates = "") {
  return "version: 1\n"
         "model:\n"
         "  type: deep_fusion\n"
         "  decoder:\n"
         "    type: language_model\n"
         "    hidden_size: 32\n"
         "    embeddings: {vocab_size: 50}\n"
         "    decoder:\n"
         "      type: repeat\n"
         "      num_layers: 4\n"
         "      block:\n"
         "        type: transformer\n"
         "        mixer: {type: attention, heads: 4, head_groups: 2, rotary: {type: default}}\n"
         "        mlp: {type: gated, intermediate_size: 64}\n"
         "        normalization: {type: rms_norm}\n"
         "    head: {normalization: {type: rms_norm}}\n"
         "  encoder:\n"
         "    encoder: {type: features, width: 12, tokens: 3}\n" +
         std::string(projector ? "    connectors: [{type: linear, bias: true}]\n" : "") +
         "  fusion_layers:\n"
         "    every: 2\n"
         "    placement: " + placement + "\n"
         "    block:\n"
         "      type: gated_cross_attention\n"
         "      attention: {heads: 4, head_groups: 2, qk_norm: {type: rms_norm}}\n"
         "      mlp: {type: gated, intermediate_size: 48}\n"
         "      normalization: {type: rms_norm}\n"
         "      unattended_rows: " + rows + "\n" + gates +
         "  fusion_vocab_size: 2\n";
}

const std::string kOpenGates =
    "      attention_gate: {initialization: {type: fill, value: 0.5}}\n"
    "      mlp_gate: {initialization: {type: fill, value: -0.7}}\n";

DeepFusionModel& fusion_of(const Model& model) {
  auto* m = dynamic_cast<DeepFusionModel*>(model.module.get());
  if (!m) throw std::logic_error("not a deep_fusion model");
  return *m;
}

// Tokens [2, 7] (ids 50 and 51 are fusion rows), features [2, 2 items, 3, 12] and a memory mask
// in which token 0 of row 0 and tokens 0-1 of row 1 see no memory, and row 1 sees only its
// second item.
struct Inputs {
  at::Tensor tokens, features, mask;
};
Inputs make_inputs() {
  at::manual_seed(3);
  Inputs in;
  in.tokens = at::randint(0, 50, {2, 7}, at::kLong);
  in.tokens.index_put_({0, 1}, 50);
  in.tokens.index_put_({1, 2}, 51);
  in.features = at::randn({2, 2, 3, 12});
  in.mask = at::ones({2, 7, 6}, at::kBool);
  in.mask.index_put_({0, 0}, false);
  in.mask.index_put_({1, 0}, false);
  in.mask.index_put_({1, 1}, false);
  in.mask.index_put_({1, at::indexing::Slice(2, 7), at::indexing::Slice(0, 3)}, false);
  return in;
}

ModelInput input_of(const Inputs& in) {
  ModelInput input{.tokens = in.tokens};
  input.named["features"] = in.features;
  input.named["memory_mask"] = in.mask;
  return input;
}

// The reference: Llama layers as transformers' LlamaDecoderLayer, each fusion layer as the
// three implementations named at the top compute it, by blocks' parameter names.
const char* kReference = R"(
import torch.nn.functional as F
from reference_models import rms_norm, rotate_half, swiglu, causal_attention
p = {k: v for k, v in inputs.items()}
tokens, features, mask = p["tokens"], p["features"], p["mask"].bool()
mode, placement = p["mode"].item(), p["placement"].item()   # 0 skip, 1 skip_mlp, 2 skip_attention
b, t = tokens.shape
word, extra = p["decoder.embeddings.word.weight"], p["fusion_embedding.weight"]
x = torch.where((tokens < 50)[..., None], word[tokens.clamp(max=49)], extra[(tokens - 50).clamp(min=0)])
m = features.flatten(0, 1)
if "encoder.connectors.0.projection.weight" in p:
    m = F.linear(m, p["encoder.connectors.0.projection.weight"], p["encoder.connectors.0.projection.bias"])
m = m.reshape(b, -1, m.shape[-1])
eps = 1e-5
H, G, D = 4, 2, 8
def fusion(x, i):
    w = lambda n: p["fusion_layers.%d.%s" % (i, n)]
    h = rms_norm(x, w("normalization.weight"), eps)
    q = F.linear(h, w("attention.query.weight")).view(b, t, H, D).transpose(1, 2)
    k = F.linear(m, w("attention.key.weight")).view(b, -1, G, D).transpose(1, 2)
    v = F.linear(m, w("attention.value.weight")).view(b, -1, G, D).transpose(1, 2)
    q = rms_norm(q, w("attention.qk_norm.0.weight"), eps)
    k = rms_norm(k, w("attention.qk_norm.1.weight"), eps)
    k, v = k.repeat_interleave(H // G, 1), v.repeat_interleave(H // G, 1)
    rows = mask.any(-1)                                  # [b, t]
    allowed = mask | ~rows[..., None]                    # mllama: an empty row attends to all
    s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    s = s.masked_fill(~allowed[:, None], float("-inf"))
    a = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, H * D)
    a = F.linear(a, w("attention.output.weight"))
    keep = rows[..., None].to(a.dtype)
    if mode in (0, 2): a = a * keep
    h = x + w("attention_gate.weight").tanh() * a
    y = swiglu(rms_norm(h, w("mlp_normalization.weight"), eps), w("mlp.gate.weight"), w("mlp.up.weight"), w("mlp.down.weight"))
    if mode in (0, 1): y = y * keep
    return h + w("mlp_gate.weight").tanh() * y
theta = 10000.0
inv = 1.0 / (theta ** (torch.arange(0, D, 2).float() / D))
f = torch.outer(torch.arange(t).float(), inv)
e = torch.cat((f, f), -1)
cos, sin = e.cos()[None, None], e.sin()[None, None]
for i in range(4):
    if placement == 0 and i in (1, 3): x = fusion(x, i)
    w = lambda n: p["decoder.decoder.%d.%s" % (i, n)]
    h = rms_norm(x, w("normalization.weight"), eps)
    q = F.linear(h, w("mixer.query.weight")).view(b, t, H, D).transpose(1, 2)
    k = F.linear(h, w("mixer.key.weight")).view(b, t, G, D).transpose(1, 2)
    v = F.linear(h, w("mixer.value.weight")).view(b, t, G, D).transpose(1, 2)
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    k, v = k.repeat_interleave(H // G, 1), v.repeat_interleave(H // G, 1)
    a = causal_attention(q, k, v).transpose(1, 2).reshape(b, t, H * D)
    x = x + F.linear(a, w("mixer.output.weight"))
    x = x + swiglu(rms_norm(x, w("mlp_normalization.weight"), eps), w("mlp.gate.weight"), w("mlp.up.weight"), w("mlp.down.weight"))
    if placement == 1 and i in (1, 3): x = fusion(x, i)
x = rms_norm(x, p["decoder.head.normalization.weight"], eps)
save({"logits": x @ p["decoder.head.output.weight"].T}, OUTPUT)
)";

TEST(DeepFusion, MatchesTheReferenceForEveryPlacementAndUnattendedRows) {
  if (!have_reference_python()) GTEST_SKIP();
  const Inputs in = make_inputs();
  const std::vector<std::string> modes = {"skip", "skip_mlp", "skip_attention"};
  for (const std::string placement : {"before", "after"})
    for (size_t mode = 0; mode < modes.size(); ++mode)
      for (const bool projector : {true, false}) {
        SCOPED_TRACE(placement + " " + modes[mode] + (projector ? " projector" : " width 12"));
        const Model model = build_text(fusion_text(placement, modes[mode], projector, kOpenGates));
        const at::Tensor logits = model.module->forward(input_of(in)).logits;
        auto refs = named_parameters(model);
        refs["tokens"] = in.tokens;
        refs["features"] = in.features;
        refs["mask"] = in.mask.to(at::kInt);
        refs["mode"] = at::scalar_tensor(static_cast<int64_t>(mode), at::kLong);
        refs["placement"] = at::scalar_tensor(placement == "after" ? 1 : 0, at::kLong);
        const auto out = run_reference(kReference, refs);
        ASSERT_TRUE(out.count("logits"));
        EXPECT_TRUE(close(logits, out.at("logits"), 1e-4, 1e-5));
      }
}

TEST(DeepFusion, TheModesDifferOnlyWhereATokenSeesNoMemory) {
  const Inputs in = make_inputs();
  std::map<std::string, at::Tensor> logits;
  for (const std::string mode : {"skip", "skip_mlp", "skip_attention"}) {
    const Model model = build_text(fusion_text("before", mode, true, kOpenGates));
    logits[mode] = model.module->forward(input_of(in)).logits;
  }
  // Row 0's token 0 sees nothing: the three differ there; causality keeps the difference on
  // the later tokens of that row too, so compare the other row's first two tokens, also blind,
  // and a row whose every token sees memory agrees everywhere.
  EXPECT_FALSE(at::allclose(logits["skip"][0][0], logits["skip_mlp"][0][0]));
  EXPECT_FALSE(at::allclose(logits["skip"][0][0], logits["skip_attention"][0][0]));
  EXPECT_FALSE(at::allclose(logits["skip_mlp"][0][0], logits["skip_attention"][0][0]));
  Inputs all = in;
  all.mask = at::ones_like(in.mask);
  const Model a = build_text(fusion_text("before", "skip", true, kOpenGates));
  const Model c = build_text(fusion_text("before", "skip_mlp", true, kOpenGates));
  EXPECT_TRUE(at::equal(a.module->forward(input_of(all)).logits,
                        c.module->forward(input_of(all)).logits));
}

// At initialization the gates are 0 and the model computes exactly what its decoder does.
TEST(DeepFusion, ZeroGatesGiveTheDecoderBitForBit) {
  const Inputs in = make_inputs();
  for (const std::string placement : {"before", "after"}) {
    const Model fused = build_text(fusion_text(placement));
    std::string decoder_text = "version: 1\nmodel:\n";
    {
      const std::string text = fusion_text(placement);
      const size_t begin = text.find("    type: language_model");
      const size_t end = text.find("  encoder:");
      std::istringstream lines(text.substr(begin, end - begin));
      for (std::string line; std::getline(lines, line);) decoder_text += line.substr(2) + "\n";
    }
    const Model plain = build_text(decoder_text, at::kFloat, 7);
    const auto fused_params = named_parameters(fused);
    at::NoGradGuard no_grad;
    for (const auto& record : plain.parameters)
      record.tensor.copy_(fused_params.at("decoder." + record.name));
    Inputs text_only = in;
    text_only.tokens = in.tokens.clamp_max(49);  // the decoder has no fusion rows
    const at::Tensor expected = plain.module->forward(text_only.tokens).logits;
    EXPECT_TRUE(at::equal(fused.module->forward(input_of(text_only)).logits, expected))
        << placement;
    // Text only (no features): the fusion layers do not run at all.
    EXPECT_TRUE(at::equal(fused.module->forward(text_only.tokens).logits, expected));
  }
}

// Prefill with the features, then one token at a time with only tokens: the cross-attention
// keys and values come from the cache, and each step's mask row is given or reused.
TEST(DeepFusion, CachedDecodingEqualsTheFullForward) {
  const Inputs in = make_inputs();
  for (const std::string placement : {"before", "after"}) {
    SCOPED_TRACE(placement);
    const Model model = build_text(fusion_text(placement, "skip", true, kOpenGates));
    auto& fusion = fusion_of(model);
    const at::Tensor full = model.module->forward(input_of(in)).logits;
    DecodeCache cache = fusion.make_cache(7);
    ModelInput prefill{.tokens = in.tokens.narrow(1, 0, 4)};
    prefill.named["features"] = in.features;
    prefill.named["memory_mask"] = in.mask.narrow(1, 0, 4);
    prefill.cache = &cache;
    std::vector<at::Tensor> pieces = {model.module->forward(prefill).logits};
    for (int64_t t = 4; t < 7; ++t) {
      ModelInput step{.tokens = in.tokens.narrow(1, t, 1)};
      step.named["memory_mask"] = in.mask.narrow(1, t, 1);
      step.cache = &cache;
      pieces.push_back(model.module->forward(step).logits);
    }
    EXPECT_TRUE(close(at::cat(pieces, 1), full, 1e-5, 1e-5));

    // Steps without a mask reuse the last row given: the same as a full forward whose later
    // rows repeat row 3.
    Inputs repeated = in;
    repeated.mask = in.mask.clone();
    for (int64_t t = 4; t < 7; ++t) repeated.mask.select(1, t).copy_(in.mask.select(1, 3));
    const at::Tensor expected = model.module->forward(input_of(repeated)).logits;
    cache.clear();
    pieces = {model.module->forward(prefill).logits};
    for (int64_t t = 4; t < 7; ++t) {
      ModelInput step{.tokens = in.tokens.narrow(1, t, 1)};
      step.cache = &cache;
      pieces.push_back(model.module->forward(step).logits);
    }
    EXPECT_TRUE(close(at::cat(pieces, 1), expected, 1e-5, 1e-5));
  }
}

TEST(DeepFusion, HfMllamaMaskCoversTilesOfItemTokens) {
  const Inputs in = make_inputs();
  const Model model = build_text(fusion_text("before", "skip", true, kOpenGates));
  // [batch, tokens, images, tiles] = [2, 7, 1, 2]: each tile is one item of 3 memory vectors.
  const at::Tensor tiles = in.mask.view({2, 7, 2, 3}).select(3, 0).unsqueeze(2);
  ModelInput tiled{.tokens = in.tokens};
  tiled.named["features"] = in.features;
  tiled.named["cross_attention_mask"] = tiles.to(at::kInt);
  EXPECT_TRUE(at::equal(model.module->forward(tiled).logits,
                        model.module->forward(input_of(in)).logits));
}

// ---------------------------------------------------------------------------------------------
// Parameters

TEST(DeepFusion, NamesKeepTheDecoderAndTogglesFreezeAsTorchtune) {
  const Model model = build_text(fusion_text());
  std::set<std::string> trainable, frozen;
  for (const auto& r : model.parameters) (r.trainable ? trainable : frozen).insert(r.name);
  EXPECT_TRUE(frozen.count("decoder.decoder.0.mixer.query.weight"));
  EXPECT_TRUE(frozen.count("decoder.embeddings.word.weight"));
  EXPECT_TRUE(trainable.count("fusion_layers.1.attention.query.weight"));
  EXPECT_TRUE(trainable.count("fusion_layers.3.attention_gate.weight"));
  EXPECT_TRUE(trainable.count("encoder.connectors.0.projection.weight"));
  EXPECT_TRUE(trainable.count("fusion_embedding.weight"));
  EXPECT_FALSE(trainable.count("fusion_layers.0.attention.query.weight") +
               frozen.count("fusion_layers.0.attention.query.weight"));
  for (const auto& name : trainable)
    EXPECT_TRUE(name.rfind("fusion_", 0) == 0 || name.rfind("encoder.connectors", 0) == 0) << name;
  // Gates are [1] as Hugging Face stores them, and start at 0.
  for (const auto& r : model.parameters)
    if (r.name.find("_gate.weight") != std::string::npos) {
      EXPECT_EQ(r.shape, std::vector<int64_t>{1});
      EXPECT_EQ(r.tensor.item<float>(), 0.0f);
    }
  const Model thawed = build_text(replace(fusion_text(), "  fusion_vocab_size: 2\n",
                                          "  fusion_vocab_size: 2\n  decoder_trainable: true\n"
                                          "  fusion_trainable: false\n"));
  for (const auto& r : thawed.parameters)
    EXPECT_EQ(r.trainable, r.name.rfind("decoder.", 0) == 0) << r.name;
}

// Llama 3.2 11B Vision as blocks models it, counted from its config.json by hand: the Llama 3.1
// 8B decoder (embeddings and head 128256 x 4096 each, 32 layers), 8 extra token rows, 8 cross
// layers (q and o 4096 x 4096, k and v 1024 x 4096, q/k norms of 128, two norms of 4096, two
// gates, SwiGLU 3 x 14336 x 4096) and the 7680 -> 4096 projector with its bias.
TEST(DeepFusion, Llama32VisionCountsAsItsConfigSays) {
  const config::Document doc = zoo("llama-3.2-11b-vision");
  const int64_t d = 4096, vocab = 128256, ff = 14336, kv = 1024;
  const int64_t self_layer = 2 * d * d + 2 * kv * d + 3 * ff * d + 2 * d;
  const int64_t cross_layer = 2 * d * d + 2 * kv * d + 3 * ff * d + 2 * d + 2 * 128 + 2;
  const int64_t decoder = 2 * vocab * d + 32 * self_layer + d;
  const int64_t expected = decoder + 8 * d + 8 * cross_layer + 7680 * d + d;
  const config::ParameterCount count = config::count_parameters(*doc.model);
  EXPECT_EQ(count.total, expected);
  EXPECT_EQ(count.total, 9'806'653'456);
  EXPECT_EQ(count.trainable, 8 * d + 8 * cross_layer + 7680 * d + d);
  const auto& c = dynamic_cast<const DeepFusionConfig&>(*doc.model);
  EXPECT_EQ(c.fusion_layers.at, (std::vector<int64_t>{3, 7, 11, 15, 19, 23, 27, 31}));
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST(DeepFusion, PlacementsThatCannotBeAreErrorsAtTheirLines) {
  EXPECT_EQ(errors(replace(fusion_text(), "every: 2", "every: 3")),
            "test.yaml:21:12: error: model.fusion_layers.every: every 3 does not divide the "
            "decoder's 4 layers\n");
  EXPECT_EQ(errors(replace(fusion_text(), "every: 2", "layers: [1, 4, 1]")),
            "test.yaml:21:17: error: model.fusion_layers.layers[1]: decoder layer 4 does not "
            "exist: the decoder has 4 layers (0-3)\n"
            "test.yaml:21:20: error: model.fusion_layers.layers[2]: decoder layer 1 is listed "
            "twice (also at layers[0])\n");
  EXPECT_EQ(errors(replace(fusion_text(), "every: 2", "every: 2\n    layers: [1]")),
            "test.yaml:22:13: error: model.fusion_layers.layers: give `every` or `layers`, not "
            "both\n");
  EXPECT_EQ(errors(replace(fusion_text(), "qk_norm: {type: rms_norm}}",
                           "qk_norm: {type: rms_norm}, memory: image}")),
            "test.yaml:25:80: error: model.fusion_layers.block.attention.memory: memory 'image' "
            "is not one this model gives: a deep_fusion model gives its encoder's features as "
            "memory 'encoder'\n");
  EXPECT_EQ(errors(replace(fusion_text(), "qk_norm: {type: rms_norm}}",
                           "qk_norm: {type: rms_norm}, memory_width: 12}")),
            "test.yaml:25:86: error: model.fusion_layers.block.attention.memory_width: is 12, "
            "but the memory 'encoder' this model gives has width 32\n");
}

TEST(DeepFusion, FusionLayersThatCannotWorkAreErrors) {
  EXPECT_EQ(errors(replace(fusion_text(), "    every: 2\n", "")),
            "test.yaml:21:5: error: model.fusion_layers: give `every` (a fusion layer every N "
            "decoder layers) or `layers`\n");
  EXPECT_EQ(errors(replace(fusion_text(), "tokens: 3}", "tokens: 3, input: pixel-values}")),
            "test.yaml:18:60: error: model.encoder.encoder.input: input name 'pixel-values' must "
            "be letters, digits and _\n");
  EXPECT_EQ(errors(replace(fusion_text(), "every: 2", "layers: []")),
            "test.yaml:21:13: error: model.fusion_layers.layers: lists no decoder layer\n");
  EXPECT_EQ(errors(replace(fusion_text(), "qk_norm: {type: rms_norm}}",
                           "qk_norm: {type: rms_norm}, memory: ''}")),
            "test.yaml:25:80: error: model.fusion_layers.block.attention.memory: names no "
            "memory\n");
  // A block that never reads the memory leaves the encoder unused.
  EXPECT_EQ(errors(replace(replace(fusion_text(), "type: gated_cross_attention",
                                   "type: transformer"),
                           "      attention: {heads: 4, head_groups: 2, qk_norm: {type: rms_norm}}\n"
                           "      mlp: {type: gated, intermediate_size: 48}\n"
                           "      normalization: {type: rms_norm}\n"
                           "      unattended_rows: skip\n",
                           "      mlp: {type: gated, intermediate_size: 48}\n"
                           "      normalization: {type: rms_norm}\n")),
            "test.yaml:23:5: error: model.fusion_layers.block: has no cross_attention: fusion "
            "layers that never read the encoder's features leave the encoder unused\n");
  EXPECT_EQ(errors(replace(fusion_text(), "  fusion_vocab_size: 2\n",
                           "  fusion_embedding: {lr_scale: 0.5}\n")),
            "test.yaml:29:21: error: model.fusion_embedding: is set but fusion_vocab_size is 0\n");
}

TEST(DeepFusion, TheDecoderMustBeALanguageModel) {
  const std::string text = fusion_text();
  const size_t begin = text.find("  decoder:\n"), end = text.find("  encoder:\n");
  const std::string tower =
      "  decoder: {type: encoder_model, encoder: {type: features, width: 32, tokens: 2}}\n";
  EXPECT_EQ(errors(text.substr(0, begin) + tower + text.substr(end)),
            "test.yaml:4:12: error: model.decoder: must be a language_model (found "
            "encoder_model)\n");
}

TEST(DeepFusion, BadInputsAreNamed) {
  const Inputs in = make_inputs();
  const Model model = build_text(fusion_text("before", "skip", true, kOpenGates));
  const auto run = [&](ModelInput input) {
    return message_of<InputError>([&] { model.module->forward(input); });
  };
  ModelInput wrong_width = input_of(in);
  wrong_width.named["features"] = at::randn({2, 2, 3, 10});
  EXPECT_EQ(run(wrong_width),
            "model.encoder.encoder: features must be [items, 3, 12], got [4, 3, 10]");
  ModelInput wrong_mask = input_of(in);
  wrong_mask.named["memory_mask"] = at::ones({2, 7, 5}, at::kBool);
  EXPECT_EQ(run(wrong_mask),
            "model: memory_mask must be [2, 7, 6] (batch, tokens, memory tokens), got [2, 7, 5]");
  ModelInput wrong_tiles = input_of(in);
  wrong_tiles.named.erase("memory_mask");
  wrong_tiles.named["cross_attention_mask"] = at::ones({2, 7, 1, 3}, at::kBool);
  EXPECT_EQ(run(wrong_tiles),
            "model: cross_attention_mask must be [2, 7, images, tiles] with images x tiles = 2 "
            "(the items of the memory), got [2, 7, 1, 3]");
  ModelInput both = input_of(in);
  both.named["cross_attention_mask"] = at::ones({2, 7, 1, 2}, at::kBool);
  EXPECT_EQ(run(both), "model: give memory_mask or cross_attention_mask, not both");
  ModelInput mask_alone{.tokens = in.tokens};
  mask_alone.named["memory_mask"] = in.mask;
  EXPECT_EQ(run(mask_alone), "model: a memory mask was given, but no features");
  ModelInput rows = input_of(in);
  rows.named["features"] = at::randn({3, 2, 3, 12});
  EXPECT_EQ(run(rows), "model: features holds 3 batch rows, the tokens 2");
}

// A decoder whose blocks cross-attend needs the memory they name: never a silent skip.
TEST(DeepFusion, CrossAttentionWithoutItsMemoryIsAnError) {
  const std::string text =
      "version: 1\n"
      "model:\n"
      "  type: language_model\n"
      "  hidden_size: 16\n"
      "  embeddings: {vocab_size: 20}\n"
      "  decoder:\n"
      "    type: repeat\n"
      "    num_layers: 2\n"
      "    block:\n"
      "      type: transformer\n"
      "      mixer: {type: cross_attention, heads: 2, memory: speech, memory_width: 6}\n"
      "      mlp: {type: mlp, intermediate_size: 32}\n"
      "      normalization: {type: layer_norm}\n"
      "  head: {normalization: {type: layer_norm}}\n";
  const Model model = build_text(text);
  const at::Tensor tokens = at::randint(0, 20, {1, 5}, at::kLong);
  EXPECT_EQ(message_of<InputError>([&] { model.module->forward(tokens); }),
            "model.decoder.block.mixer: needs memory 'speech', which this call does not give "
            "(memories given: none)");
  ModelInput input{.tokens = tokens};
  input.memories["speech"] = Memory{at::randn({1, 4, 5})};
  EXPECT_EQ(message_of<InputError>([&] { model.module->forward(input); }),
            "model.decoder.block.mixer: memory 'speech' must be [1, memory tokens, 6], got "
            "[1, 4, 5]");
  input.memories["speech"] = Memory{at::randn({1, 4, 6}), at::ones({1, 5, 3}, at::kBool)};
  EXPECT_EQ(message_of<InputError>([&] { model.module->forward(input); }),
            "model.decoder.block.mixer: the mask of memory 'speech' must be [1, 4] or [1, 5, 4] "
            "(batch, tokens, memory tokens), got [1, 5, 3]");
  input.memories["speech"] = Memory{at::randn({1, 4, 6}), at::ones({1, 4}, at::kBool)};
  EXPECT_EQ(model.module->forward(input).logits.sizes(), (at::IntArrayRef{1, 5, 20}));
  // Cached at prefill, the memory serves later steps of that batch only.
  DecodeCache cache = model.module->make_cache(8);
  input.cache = &cache;
  model.module->forward(input);
  ModelInput other{.tokens = at::randint(0, 20, {2, 1}, at::kLong)};
  other.cache = &cache;
  EXPECT_EQ(message_of<InputError>([&] { model.module->forward(other); }),
            "model.decoder.block.mixer: the decoding cache holds memory 'speech' for batch 1, "
            "this step has batch 2");
}

// Hugging Face stores each gate as [1]; a checkpoint with another shape is refused by name.
TEST(DeepFusion, AGateThatIsNotAScalarInACheckpointIsRefused) {
  const Model model = build_text(fusion_text());
  TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& r : model.parameters)
    tensors.emplace_back(r.name, r.name == "fusion_layers.3.mlp_gate.weight" ? at::zeros({32})
                                                                             : r.tensor.detach());
  const std::string file = (dir.path() / "model.safetensors").string();
  weights::write_safetensors(file, tensors);
  std::vector<std::pair<std::string, at::Tensor>> parameters;
  for (const auto& r : model.parameters) parameters.emplace_back(r.name, r.tensor);
  const std::string message =
      message_of<weights::LoadError>([&] { weights::load_safetensors(parameters, {file}); });
  EXPECT_NE(message.find("fusion_layers.3.mlp_gate.weight: checkpoint [32], model [1]"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace blocks::testing
