// The attention module against a plain-PyTorch reference written from the papers' formulas:
// rotary in both layouts (RoFormer; Meta's interleaved and Hugging Face's half), Llama 3.1's
// frequency scaling, xPos as torchscale computes it, qk norm, softmax scale, bidirectional.
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

// One attention layer inside a small model, its parameters, and its output on random x.
struct Case {
  std::string mixer;
  int64_t tokens = 10;
};

struct Result {
  at::Tensor x, out;
  std::map<std::string, at::Tensor> inputs;  // x and the mixer's parameters, short names
};

Result run(const Case& c) {
  ModelText text;
  text.mixer = c.mixer;
  text.layers = 1;
  Model model = build_text(text.text(), at::kFloat, 3);
  model.module->eval();
  auto mixer = find_module<MixerModule>(*model.module, "decoder.0.mixer");
  Result r;
  r.x = at::randn({2, c.tokens, 64}, at::make_generator<at::CPUGeneratorImpl>(5));
  Step step;
  step.positions = at::arange(c.tokens, at::kLong).unsqueeze(0).expand({2, c.tokens});
  r.out = mixer->forward(r.x, step);
  r.inputs["x"] = r.x;
  const std::string prefix = "decoder.0.mixer.";
  for (const auto& p : model.parameters)
    if (p.name.rfind(prefix, 0) == 0) r.inputs[p.name.substr(prefix.size())] = p.tensor.detach();
  return r;
}

// The reference: `rotate(q, k, pos)` and the knobs are filled in per test.
const char* kReference = R"(
import torch.nn.functional as F
x = inputs['x']
B, T, _ = x.shape
H, G, D = heads, groups, head_size
q = F.linear(x, inputs['query.weight']).view(B, T, H, D)
k = F.linear(x, inputs['key.weight']).view(B, T, G, D)
v = F.linear(x, inputs['value.weight']).view(B, T, G, D)
if qk_norm:
    def rms(t, w):
        return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-5))
    q, k = rms(q, inputs['qk_norm.0.weight']), rms(k, inputs['qk_norm.1.weight'])
pos = torch.arange(T).float()
q, k = rotate(q, k, pos)
q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
k = k.repeat_interleave(H // G, 1)
v = v.repeat_interleave(H // G, 1)
s = (q @ k.transpose(-1, -2)) * scale
if causal:
    s = s.masked_fill(torch.ones(T, T).triu(1).bool(), float('-inf'))
o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * D)
save({'out': F.linear(o, inputs['output.weight'])}, OUTPUT)
)";

const char* kHalf = R"(
def rotate(q, k, pos):
    inv = 1.0 / (theta ** (torch.arange(0, head_size, 2).double() / head_size))
    inv = scale_frequencies(inv).float()
    f = torch.outer(pos, inv)
    cos = torch.cat([f, f], -1).cos()[None, :, None]
    sin = torch.cat([f, f], -1).sin()[None, :, None]
    def half(t):
        a, b = t[..., : head_size // 2], t[..., head_size // 2:]
        return torch.cat([-b, a], -1)
    return q * cos + half(q) * sin, k * cos + half(k) * sin
)";

// Meta's reference: complex multiplication of consecutive pairs.
const char* kInterleaved = R"(
def rotate(q, k, pos):
    inv = 1.0 / (theta ** (torch.arange(0, head_size, 2).double() / head_size))
    f = torch.polar(torch.ones(len(pos), head_size // 2), torch.outer(pos, inv.float()))
    def apply(t):
        c = torch.view_as_complex(t.float().reshape(*t.shape[:-1], -1, 2))
        return torch.view_as_real(c * f[None, :, None]).flatten(3)
    return apply(q), apply(k)
)";

// torchscale's XPOS: centered positions, scale^(pos / scale_base), downscaled keys.
const char* kXpos = R"(
def rotate(q, k, pos):
    T = len(pos)
    scale = (torch.arange(0, head_size, 2) + 0.4 * head_size) / (1.4 * head_size)
    min_pos = -T // 2
    power = torch.arange(min_pos, min_pos + T).float() / scale_base
    sc = scale[None, :] ** power[:, None]
    inv = 1.0 / (10000 ** (torch.arange(0, head_size // 2).float() / (head_size // 2)))
    ang = torch.outer(torch.arange(T).float(), inv)
    sin, cos = ang.sin(), ang.cos()
    dup = lambda m: m.repeat_interleave(2, -1)[None, :, None]
    def rot2(t):
        x1, x2 = t[..., ::2], t[..., 1::2]
        return torch.stack((-x2, x1), -1).flatten(-2)
    def apply(t, s):
        return t * dup(cos * s) + rot2(t) * dup(sin * s)
    return apply(q, sc), apply(k, 1 / sc)
)";

std::string knobs(int heads, int groups, int head_size, double theta, bool causal, bool qk_norm,
                  double scale, const std::string& extra = "") {
  return "heads, groups, head_size, theta = " + std::to_string(heads) + ", " +
         std::to_string(groups) + ", " + std::to_string(head_size) + ", " +
         std::to_string(theta) + "\ncausal, qk_norm = " + (causal ? "True" : "False") + ", " +
         (qk_norm ? "True" : "False") + "\nscale = " + std::to_string(scale) +
         "\nscale_frequencies = lambda f: f\n" + extra;
}

void expect_matches(const Case& c, const std::string& python) {
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch";
  Result r = run(c);
  auto ref = run_reference(python + kReference, r.inputs);
  ASSERT_TRUE(ref.count("out"));
  EXPECT_TRUE(close(r.out, ref["out"], 1e-5, 1e-5));
}

TEST(AttentionModule, GroupedHeadsWithHalfRotary) {
  expect_matches({"{type: attention, heads: 4, head_groups: 2, rotary: {type: default}}"},
                 knobs(4, 2, 16, 10000, true, false, 0.25) + kHalf);
}

TEST(AttentionModule, MultiQueryWithInterleavedRotary) {
  expect_matches(
      {"{type: attention, heads: 4, head_groups: 1, rotary: {type: default, layout: "
       "interleaved, theta: 500.0}}"},
      knobs(4, 1, 16, 500, true, false, 0.25) + kInterleaved);
}

TEST(AttentionModule, Llama3FrequencyScaling) {
  // original_context_length 16 puts the 16-dim head's frequencies in all three bands.
  const std::string scaling = R"(
import math
def scale_frequencies(f):
    low, high, factor, old = 1.0, 4.0, 8.0, 16
    out = []
    for freq in f.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(freq)
        elif wavelen > old / low:
            out.append(freq / factor)
        else:
            s = (old / wavelen - low) / (high - low)
            out.append((1 - s) * freq / factor + s * freq)
    return torch.tensor(out, dtype=torch.float64)
)";
  expect_matches(
      {"{type: attention, heads: 4, rotary: {type: llama3, theta: 10000.0, "
       "original_context_length: 16}}"},
      knobs(4, 4, 16, 10000, true, false, 0.25) + scaling + kHalf);
}

TEST(AttentionModule, XposMatchesTorchscale) {
  expect_matches({"{type: attention, heads: 4, rotary: {type: xpos, scale_base: 8.0}}"},
                 knobs(4, 4, 16, 10000, true, false, 0.25, "scale_base = 8.0\n") + kXpos);
}

TEST(AttentionModule, QueryKeyNormAndSoftmaxScale) {
  expect_matches(
      {"{type: attention, heads: 4, softmax_scale: 0.1, qk_norm: {type: rms_norm}, rotary: "
       "{type: default}}"},
      knobs(4, 4, 16, 10000, true, true, 0.1) + kHalf);
}

TEST(AttentionModule, Bidirectional) {
  expect_matches({"{type: attention, rotary: {type: none}, heads: 2, causal: false}"},
                 knobs(2, 2, 32, 10000, false, false, 1 / std::sqrt(32.0)) +
                     "def rotate(q, k, pos):\n    return q, k\n");
}

TEST(AttentionModule, ParametersFollowTheConfig) {
  ModelText text;
  text.mixer =
      "{type: attention, rotary: {type: none}, heads: 4, head_groups: 2, qk_norm: {type: layer_norm}, query: {bias: "
      "true}}";
  text.layers = 1;
  Model model = build_text(text.text());
  std::vector<std::string> names;
  for (const auto& p : model.parameters)
    if (p.name.rfind("decoder.0.mixer.", 0) == 0) names.push_back(p.name.substr(16));
  EXPECT_EQ(names, (std::vector<std::string>{"query.weight", "query.bias", "key.weight",
                                             "value.weight", "output.weight", "qk_norm.0.weight",
                                             "qk_norm.0.bias", "qk_norm.1.weight",
                                             "qk_norm.1.bias"}));
}

TEST(AttentionModule, WrongWidthNamesTheLinear) {
  ModelText text;
  Model model = build_text(text.text());
  auto mixer = find_module<MixerModule>(*model.module, "decoder.1.mixer");
  Step step;
  step.positions = at::zeros({1, 3}, at::kLong);
  try {
    mixer->forward(at::zeros({1, 3, 65}), step);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(),
                 "model.decoder.block.mixer.query: expected inputs with 64 features in the last "
                 "dimension, got shape [1, 3, 65]");
  }
}

}  // namespace
}  // namespace blocks::testing
