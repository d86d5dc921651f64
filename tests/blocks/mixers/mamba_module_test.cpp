// The mamba mixer module: the chunked selective scan against the per-step one, the whole mixer
// against an independent Python reference (mamba_simple's slow path), decoding with a cache,
// parameter names and counts, input checks and gradients.
#include "blocks/mixers/mamba_module.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "tests/support/errors.h"
#include "tests/support/torch_support.h"

namespace blocks {
namespace {

using testing::build_text;
using testing::close;
using testing::find_module;
using testing::ModelText;

constexpr int64_t kHidden = 32;

std::string model_text(const std::string& mixer) {
  ModelText m;
  m.hidden_size = kHidden;
  m.layers = 1;
  m.mixer = mixer;
  return m.text();
}

const char* const kPlain = "{type: mamba, state_size: 8, dt_rank: 4}";
const char* const kNormalized =
    "{type: mamba, state_size: 8, dt_rank: 4, state_normalization: {type: rms_norm, epsilon: "
    "1.0e-6}}";
const char* const kNoConvBias = "{type: mamba, state_size: 8, dt_rank: 4, conv_bias: false}";

struct Built {
  Model model;
  std::shared_ptr<MixerModule> mixer;
};

Built build_mamba(const std::string& mixer, uint64_t seed = 0) {
  Built b{build_text(model_text(mixer), at::kFloat, seed), nullptr};
  b.mixer = find_module<MixerModule>(*b.model.module, "decoder.0.mixer");
  return b;
}

// Replaces every parameter of the mixer with normal values (std 1 / sqrt(last dim) for matrices,
// 1 for vectors), keeping activations O(1): at initialization the scan adds little to D u
// (delta ~ 0.01, small B and C), so a broken scan could hide behind it.
void randomize(const Built& b, uint64_t seed = 1) {
  c10::NoGradGuard no_grad;
  at::manual_seed(seed);
  for (auto& p : b.mixer->parameters())
    p.normal_(0.0, p.dim() >= 2 ? 1.0 / std::sqrt(static_cast<double>(p.size(-1))) : 1.0);
}

Step make_step(int64_t batch, int64_t tokens, int64_t past = 0, DecodeCache* cache = nullptr) {
  Step step;
  step.positions = at::arange(past, past + tokens, at::kLong).expand({batch, tokens});
  step.past = past;
  step.cache = cache;
  return step;
}

// The mixer's parameters by local name ("input.weight"), for the reference.
std::map<std::string, at::Tensor> mixer_parameters(const Model& model) {
  const std::string prefix = "decoder.0.mixer.";
  std::map<std::string, at::Tensor> out;
  for (const auto& p : model.parameters)
    if (p.name.rfind(prefix, 0) == 0) out[p.name.substr(prefix.size())] = p.tensor.detach();
  return out;
}

// Random scan inputs in the shapes selective_scan documents, with delta > 0 and A < 0.
struct ScanInputs {
  at::Tensor u, delta, A, B, C, D;
  ScanInputs(int64_t batch, int64_t inner, int64_t state, int64_t tokens) {
    at::manual_seed(7);
    u = at::randn({batch, inner, tokens});
    delta = at::softplus(at::randn({batch, inner, tokens}));
    A = -at::exp(at::randn({inner, state}));
    B = at::randn({batch, state, tokens});
    C = at::randn({batch, state, tokens});
    D = at::randn({inner});
  }
};

TEST(MambaScan, ChunkedEqualsNaiveForEveryChunkSize) {
  const ScanInputs in(2, 6, 4, 45);
  at::Tensor naive_state;
  const at::Tensor naive =
      selective_scan_naive(in.u, in.delta, in.A, in.B, in.C, in.D, &naive_state);
  EXPECT_EQ(naive.sizes(), in.u.sizes());
  EXPECT_EQ(naive_state.sizes(), (std::vector<int64_t>{2, 6, 4}));
  for (int64_t chunk : {1, 7, 16, 32, 45, 64}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    at::Tensor state;
    const at::Tensor y = selective_scan(in.u, in.delta, in.A, in.B, in.C, in.D, &state, chunk);
    EXPECT_TRUE(close(y, naive, 1e-5, 1e-6));
    EXPECT_TRUE(close(state, naive_state, 1e-5, 1e-6));
  }
}

TEST(MambaScan, ContinuesFromAnInitialState) {
  const ScanInputs in(2, 6, 4, 30);
  const at::Tensor full = selective_scan_naive(in.u, in.delta, in.A, in.B, in.C, in.D);
  auto part = [](const at::Tensor& t, int64_t start, int64_t length) {
    return t.narrow(-1, start, length);
  };
  for (const bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked" : "naive");
    const auto scan = chunked ? selective_scan : selective_scan_naive;
    at::Tensor state;
    const at::Tensor head = scan(part(in.u, 0, 13), part(in.delta, 0, 13), in.A,
                                 part(in.B, 0, 13), part(in.C, 0, 13), in.D, &state, 8, {});
    const at::Tensor tail = scan(part(in.u, 13, 17), part(in.delta, 13, 17), in.A,
                                 part(in.B, 13, 17), part(in.C, 13, 17), in.D, nullptr, 8, state);
    EXPECT_TRUE(close(at::cat({head, tail}, -1), full, 1e-5, 1e-6));
  }
}

std::string input_error(const std::function<void()>& run) {
  return testing::message_of<nn::InputError>(run);
}

TEST(MambaScan, RejectsMismatchedShapes) {
  const ScanInputs in(2, 6, 4, 10);
  EXPECT_EQ(input_error([&] {
              selective_scan(in.u, in.delta, in.A, in.B.narrow(1, 0, 3), in.C, in.D);
            }),
            "selective_scan: expected u, delta [batch, inner, T], A [inner, N], B, C [batch, N, "
            "T], D [inner]; got u [2, 6, 10], delta [2, 6, 10], A [6, 4], B [2, 3, 10], C [2, 4, "
            "10], D [6]");
  EXPECT_EQ(input_error([&] {
              selective_scan(in.u, in.delta, in.A, in.B, in.C, in.D, nullptr, 0);
            }),
            "selective_scan: chunk must be >= 1");
}

// mamba_simple.py's slow path (F.conv1d and selective_scan_ref's per-step loop), in float64.
const char* const kReference = R"PY(
import torch.nn.functional as F
p = {k: v.double() for k, v in inputs.items()}
x = p.pop('x')
def linear(t, name):
    out = t @ p[name + '.weight'].t()
    return out + p[name + '.bias'] if name + '.bias' in p else out
def rms_norm(t, place):
    weight = p['state_normalization.%d.weight' % place]
    return weight * t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + EPS)
batch, seqlen, _ = x.shape
xz = linear(x, 'input').transpose(1, 2)
xs, z = xz.chunk(2, dim=1)
w = p['conv.weight']
inner, _, k = w.shape
xs = F.silu(F.conv1d(xs, w, p.get('conv.bias'), padding=k - 1, groups=inner)[..., :seqlen])
x_dbl = linear(xs.transpose(1, 2), 'selection')
rank, n = p['dt.weight'].shape[1], p['a_log.weight'].shape[1]
dt, B, C = torch.split(x_dbl, [rank, n, n], dim=-1)
if 'state_normalization.0.weight' in p:
    dt, B, C = rms_norm(dt, 0), rms_norm(B, 1), rms_norm(C, 2)
dt = (dt @ p['dt.weight'].t()).transpose(1, 2)
delta = F.softplus(dt + p['dt.bias'][:, None])
A = -torch.exp(p['a_log.weight'])
B, C = B.transpose(1, 2), C.transpose(1, 2)
deltaA = torch.exp(torch.einsum('bdl,dn->bdln', delta, A))
deltaB_u = torch.einsum('bdl,bnl,bdl->bdln', delta, B, xs)
h = torch.zeros(batch, inner, n, dtype=x.dtype)
ys = []
for i in range(seqlen):
    h = deltaA[:, :, i] * h + deltaB_u[:, :, i]
    ys.append(torch.einsum('bdn,bn->bd', h, C[:, :, i]))
y = torch.stack(ys, dim=2) + xs * p['d.weight'][:, None]
y = y * F.silu(z)
save({'out': linear(y.transpose(1, 2), 'output').float()}, OUTPUT)
)PY";

void expect_matches_reference(const std::string& mixer, bool random_parameters = true) {
  if (!testing::have_reference_python()) GTEST_SKIP() << "no /usr/bin/python3 with torch";
  Built b = build_mamba(mixer);
  if (random_parameters) randomize(b);
  at::manual_seed(3);
  const at::Tensor x = at::randn({2, 37, kHidden});  // more than one scan chunk
  Step step = make_step(2, 37);
  const at::Tensor out = b.mixer->forward(x, step);
  std::map<std::string, at::Tensor> inputs = mixer_parameters(b.model);
  inputs["x"] = x;
  const auto ref = testing::run_reference(std::string("EPS = 1e-6\n") + kReference, inputs);
  ASSERT_TRUE(ref.count("out"));
  // 1e-5 of each element, or of the largest one where out_proj's sum cancels to near zero.
  const at::Tensor& expected = ref.at("out");
  EXPECT_TRUE(close(out, expected, 1e-5, 1e-5 * expected.abs().max().item<double>()));
}

TEST(MambaModule, MatchesReferenceAtInitialization) { expect_matches_reference(kPlain, false); }
TEST(MambaModule, MatchesReference) { expect_matches_reference(kPlain); }
TEST(MambaModule, MatchesReferenceWithStateNormalization) {
  expect_matches_reference(kNormalized);
}
TEST(MambaModule, MatchesReferenceWithoutConvBias) { expect_matches_reference(kNoConvBias); }

// Prefill `prefill` tokens, then one token at a time, against one forward of all of them.
void expect_decoding_matches(int64_t prefill, int64_t steps) {
  Built b = build_mamba(kNormalized);
  randomize(b);
  const int64_t batch = 2, total = prefill + steps;
  at::manual_seed(5);
  const at::Tensor x = at::randn({batch, total, kHidden});
  Step full_step = make_step(batch, total);
  const at::Tensor full = b.mixer->forward(x, full_step);

  DecodeCache cache(total);
  std::vector<at::Tensor> outs;
  auto call = [&](int64_t start, int64_t tokens) {
    Step step = make_step(batch, tokens, cache.length(), &cache);
    outs.push_back(b.mixer->forward(x.narrow(1, start, tokens), step));
    cache.advance(tokens);
  };
  call(0, prefill);
  for (int64_t t = prefill; t < total; ++t) call(t, 1);
  EXPECT_TRUE(close(at::cat(outs, 1), full, 1e-5, 1e-6));
}

TEST(MambaModule, DecodingContinuesTheFullForward) { expect_decoding_matches(5, 3); }
TEST(MambaModule, DecodingAcrossScanChunks) { expect_decoding_matches(35, 4); }

TEST(MambaModule, ContinuingWithoutCachedStateThrows) {
  Built b = build_mamba(kPlain);
  DecodeCache cache(8);
  Step step = make_step(1, 1, /*past=*/3, &cache);
  EXPECT_EQ(input_error([&] { b.mixer->forward(at::randn({1, 1, kHidden}), step); }),
            "model.decoder.block.mixer: the decoding cache holds no state for this batch after 3 "
            "tokens");
}

void expect_parameters_follow_config(const std::string& mixer,
                                     std::vector<std::string> expected) {
  const Built b = build_mamba(mixer);
  const std::string prefix = "decoder.0.mixer.";
  std::vector<std::string> names;
  int64_t numel = 0;
  for (const auto& p : b.model.parameters)
    if (p.name.rfind(prefix, 0) == 0) {
      names.push_back(p.name.substr(prefix.size()));
      numel += p.numel();
    }
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);

  const config::Document doc = testing::document(model_text(mixer));
  const config::Config* mamba = nullptr;
  config::count_parameters(*doc.model, [&](const config::Config& c, const std::string&, int64_t) {
    if (c.type().name == "mamba") mamba = &c;
  });
  ASSERT_NE(mamba, nullptr);
  const config::ParameterCount count = config::count_parameters(*mamba);
  EXPECT_EQ(static_cast<int64_t>(names.size()), count.tensors);
  EXPECT_EQ(numel, count.total);
}

TEST(MambaModule, ParameterNamesAndCountFollowTheConfig) {
  const std::vector<std::string> base = {"input.weight", "conv.weight",  "conv.bias",
                                         "selection.weight", "dt.weight", "dt.bias",
                                         "a_log.weight", "d.weight",     "output.weight"};
  expect_parameters_follow_config(kPlain, base);
  std::vector<std::string> normalized = base;
  for (const char* n : {"state_normalization.0.weight", "state_normalization.1.weight",
                        "state_normalization.2.weight"})
    normalized.push_back(n);
  expect_parameters_follow_config(kNormalized, normalized);
  std::vector<std::string> no_bias = base;
  no_bias.erase(std::find(no_bias.begin(), no_bias.end(), "conv.bias"));
  expect_parameters_follow_config(kNoConvBias, no_bias);
}

TEST(MambaModule, ConvBiasStartsLikeTorchConv1d) {
  const Built b = build_mamba(kPlain);  // conv_kernel_size 4: uniform(-1/2, 1/2)
  for (const auto& p : b.model.parameters) {
    if (p.name != "decoder.0.mixer.conv.bias") continue;
    EXPECT_EQ(p.initialization->type().name, "uniform");
    EXPECT_LE(p.tensor.abs().max().item<double>(), 0.5);
    EXPECT_GT(p.tensor.abs().max().item<double>(), 0.25);  // not left at zero
    return;
  }
  ADD_FAILURE() << "no conv.bias";
}

TEST(MambaModule, WrongInputWidthNamesPathAndShapes) {
  Built b = build_mamba(kPlain);
  for (const at::Tensor& x : {at::randn({2, 5, 16}), at::randn({5, kHidden})}) {
    Step step = make_step(1, 5);
    try {
      b.mixer->forward(x, step);
      ADD_FAILURE() << "no InputError for shape " << x.sizes();
    } catch (const InputError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("model.decoder.block.mixer"), std::string::npos) << message;
      EXPECT_NE(message.find("[batch, tokens, 32]"), std::string::npos) << message;
      EXPECT_NE(message.find(c10::str(x.sizes())), std::string::npos) << message;
    }
  }
}

TEST(MambaModule, BackwardGivesFiniteGradientsEverywhere) {
  Built b = build_mamba(kNormalized);
  randomize(b);
  at::manual_seed(11);
  Step step = make_step(2, 40);
  b.mixer->forward(at::randn({2, 40, kHidden}), step).pow(2).sum().backward();
  int64_t checked = 0;
  for (const auto& p : b.mixer->named_parameters()) {
    SCOPED_TRACE(p.key());
    const at::Tensor grad = p.value().grad();
    ASSERT_TRUE(grad.defined());
    EXPECT_TRUE(grad.isfinite().all().item<bool>());
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
    ++checked;
  }
  EXPECT_EQ(checked, 12);
}

// Padding. transformers' modeling_mamba.py (MambaMixer.slow_forward) and modeling_jamba.py
// (JambaMambaMixer.slow_forward) multiply the convolution's input and its activated output by
// `attention_mask`; with that, each row of a left-padded batch gives the logits of the row run
// alone, unpadded, at its real positions, in a full forward and when decoding continues.

// Every parameter of the model replaced with normal values (as `randomize` does for one mixer),
// so that the scan and the convolution bias weigh in the logits and a leak would show.
void randomize_model(const Model& model, uint64_t seed = 2) {
  c10::NoGradGuard no_grad;
  at::manual_seed(seed);
  for (const auto& p : model.parameters)
    p.tensor.normal_(0.0, p.tensor.dim() >= 2 ? 1.0 / std::sqrt(double(p.tensor.size(-1))) : 1.0);
}

at::Tensor random_tokens(int64_t batch, int64_t length, uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(1, 100, {batch, length}, generator, at::TensorOptions().dtype(at::kLong));
}

// Rows of `lengths` tokens, left-padded to the longest with non-zero pad ids (so a pad's
// embedding is not zero by luck); compares them, padded and alone, prefilled and then decoded
// `steps` tokens further through the cache.
void expect_left_padding_matches_unpadded(const Model& model) {
  model.module->eval();
  const std::vector<int64_t> lengths = {6, 9, 4};
  const int64_t batch = 3, width = 9, steps = 3;
  std::vector<at::Tensor> rows, ids, masks, positions;
  for (int64_t r = 0; r < batch; ++r) {
    rows.push_back(random_tokens(1, lengths[r] + steps, 10 + r));
    const int64_t pads = width - lengths[r];
    ids.push_back(at::cat({at::full({1, pads}, 7, at::kLong), rows[r].narrow(1, 0, lengths[r])}, 1));
    masks.push_back(at::cat({at::zeros({1, pads}, at::kLong), at::ones({1, lengths[r]}, at::kLong)}, 1));
    positions.push_back(at::clamp_min(at::arange(-pads, lengths[r], at::kLong), 0).unsqueeze(0));
  }
  const at::Tensor mask = at::cat(masks, 0);
  DecodeCache cache = model.module->make_cache(width + steps);
  ModelInput prefill;
  prefill.tokens = at::cat(ids, 0);
  prefill.attention_mask = mask;
  prefill.positions = at::cat(positions, 0);
  prefill.cache = &cache;
  std::vector<at::Tensor> padded = {model.module->forward(prefill).logits};
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<at::Tensor> next, at_position;
    for (int64_t r = 0; r < batch; ++r) {
      next.push_back(rows[r].narrow(1, lengths[r] + s, 1));
      at_position.push_back(at::full({1, 1}, lengths[r] + s, at::kLong));
    }
    ModelInput step;
    step.tokens = at::cat(next, 0);
    step.attention_mask = at::cat({mask, at::ones({batch, s + 1}, at::kLong)}, 1);
    step.positions = at::cat(at_position, 0);
    step.cache = &cache;
    padded.push_back(model.module->forward(step).logits);
  }
  const at::Tensor all = at::cat(padded, 1);  // [batch, width + steps, vocab]
  for (int64_t r = 0; r < batch; ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    const at::Tensor alone = model.module->forward(rows[r]).logits;
    const at::Tensor real = all.narrow(0, r, 1).narrow(1, width - lengths[r], lengths[r] + steps);
    EXPECT_TRUE(close(real, alone, 1e-5, 1e-5 * alone.abs().max().item<double>()));
  }
}

TEST(MambaModule, LeftPaddingMatchesUnpaddedInAMambaOnlyModel) {
  ModelText m;
  m.mixer = kNormalized;
  m.layers = 2;
  const Model model = build_text(m.text());
  randomize_model(model);
  expect_left_padding_matches_unpadded(model);
}

TEST(MambaModule, LeftPaddingMatchesUnpaddedInTheHybridModel) {
  config::LoadOptions options;
  for (const char* set :
       {"model.hidden_size=64", "model.embeddings.vocab_size=100", "model.decoder.num_layers=8",
        "model.decoder.blocks.m.mixer.state_size=8", "model.decoder.blocks.m.mixer.dt_rank=4",
        "model.decoder.blocks.M.mixer.state_size=8", "model.decoder.blocks.M.mixer.dt_rank=4",
        "model.decoder.blocks.m.mlp.intermediate_size=96",
        "model.decoder.blocks.M.mlp.intermediate_size=32", "model.decoder.blocks.M.mlp.experts=4",
        "model.decoder.blocks.a.mixer.heads=4", "model.decoder.blocks.a.mixer.head_groups=2",
        "model.decoder.blocks.a.mixer.head_size=16",
        "model.decoder.blocks.a.mlp.intermediate_size=96"})
    options.sets.push_back(set);
  const config::Document doc = testing::zoo("hybrid-mamba-attention", options);
  const Model model = build_model(*doc.model);
  randomize_model(model);
  expect_left_padding_matches_unpadded(model);
}

TEST(MambaModule, PaddingMaskOfTheWrongShapeNamesPathAndShapes) {
  Built b = build_mamba(kPlain);
  Step step = make_step(2, 5);
  step.key_mask = at::ones({2, 6}, at::kBool);
  try {
    b.mixer->forward(at::randn({2, 5, kHidden}), step);
    ADD_FAILURE() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "model.decoder.block.mixer: the padding mask must be [2, 5] (batch, "
                           "cached + new tokens), got [2, 6]");
  }
}

}  // namespace
}  // namespace blocks
