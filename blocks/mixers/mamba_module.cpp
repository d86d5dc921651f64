// The mamba mixer module and its selective scan (Gu & Dao 2023; reference: mamba_ssm's
// mamba_simple.py slow path and selective_scan_ref), with Jamba's dt/B/C normalization.
#include "blocks/mixers/mamba_module.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "blocks/init/uniform.h"
#include "blocks/linear/linear_module.h"
#include "blocks/mixers/mamba.h"
#include "blocks/modules.h"

namespace blocks {

namespace {

void check_scan_inputs(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                       const at::Tensor& B, const at::Tensor& C, const at::Tensor& D) {
  const bool ok = u.dim() == 3 && delta.sizes() == u.sizes() && A.dim() == 2 &&
                  A.size(0) == u.size(1) && B.dim() == 3 && B.size(0) == u.size(0) &&
                  B.size(1) == A.size(1) && B.size(2) == u.size(2) && C.sizes() == B.sizes() &&
                  D.dim() == 1 && D.size(0) == u.size(1);
  if (!ok)
    throw InputError("selective_scan",
                     "expected u, delta [batch, inner, T], A [inner, N], B, C [batch, N, T], "
                     "D [inner]; got u " +
                         c10::str(u.sizes()) + ", delta " + c10::str(delta.sizes()) + ", A " +
                         c10::str(A.sizes()) + ", B " + c10::str(B.sizes()) + ", C " +
                         c10::str(C.sizes()) + ", D " + c10::str(D.sizes()));
}

at::Tensor f32(const at::Tensor& t) { return t.to(at::kFloat); }

// h_{-1}: the given state in float32, or zeros [batch, inner, N].
at::Tensor start_state(const at::Tensor& initial, const at::Tensor& u, int64_t state_size) {
  if (initial.defined()) return f32(initial);
  return at::zeros({u.size(0), u.size(1), state_size}, u.options().dtype(at::kFloat));
}

// exp(cs_t - cs_s) for s <= t and 0 for s > t, [..., L(t), L(s)], from the log-decays
// `log_decay` [..., L] (cs their cumulative sum). Each exponent sum_{s < r <= t} log_decay_r is
// summed directly, as Mamba-2's segsum does: subtracting two large cumulative sums would lose
// float32 precision exactly where the decay is near 1 and matters. Every exponent is <= 0
// (delta > 0, A < 0); s > t is set to -inf before the exp, which gives 0 with a zero gradient.
at::Tensor decay_matrix(const at::Tensor& log_decay) {
  const int64_t length = log_decay.size(-1);
  const auto flags = log_decay.options().dtype(at::kBool);
  const at::Tensor after_s = at::ones({length, length}, flags).tril(-1);      // [t, s]: r = t > s
  const at::Tensor terms = at::where(after_s, log_decay.unsqueeze(-1), 0.0);  // [t, s]: ld_t
  const at::Tensor later = at::ones({length, length}, flags).triu(1);         // [t, s]: s > t
  return terms.cumsum(-2).masked_fill(later, -std::numeric_limits<float>::infinity()).exp();
}

// The states h_t [batch, inner, N, L] of one chunk from its log-decays delta A and its inputs
// delta B u (both [batch, inner, N, L]) and the state h0 carried in:
//   h_t = sum_{s <= t} exp(cs_t - cs_s) dbu_s + exp(cs_t) h0.
at::Tensor chunk_states(const at::Tensor& log_decay, const at::Tensor& dbu, const at::Tensor& h0) {
  const at::Tensor carried = log_decay.cumsum(-1).exp() * h0.unsqueeze(-1);
  return at::matmul(decay_matrix(log_decay), dbu.unsqueeze(-1)).squeeze(-1) + carried;
}

}  // namespace

at::Tensor selective_scan(const at::Tensor& u_in, const at::Tensor& delta_in,
                          const at::Tensor& A_in, const at::Tensor& B_in, const at::Tensor& C_in,
                          const at::Tensor& D_in, at::Tensor* final_state, int64_t chunk,
                          const at::Tensor& initial_state) {
  check_scan_inputs(u_in, delta_in, A_in, B_in, C_in, D_in);
  if (chunk < 1) throw InputError("selective_scan", "chunk must be >= 1");
  const at::Tensor u = f32(u_in), delta = f32(delta_in), A = f32(A_in), B = f32(B_in),
                   C = f32(C_in), D = f32(D_in);
  const int64_t tokens = u.size(2);
  // Laid out [batch, inner, N, T] so each chunk's decay matrix multiplies over its last dims.
  const at::Tensor log_decay = delta.unsqueeze(2) * A.unsqueeze(-1);
  const at::Tensor dbu = (delta * u).unsqueeze(2) * B.unsqueeze(1);
  at::Tensor h = start_state(initial_state, u, A.size(1));
  std::vector<at::Tensor> ys;
  for (int64_t start = 0; start < tokens; start += chunk) {
    const int64_t length = std::min(chunk, tokens - start);
    const at::Tensor states =
        chunk_states(log_decay.narrow(-1, start, length), dbu.narrow(-1, start, length), h);
    ys.push_back((states * C.narrow(-1, start, length).unsqueeze(1)).sum(2));
    h = states.select(-1, length - 1);
  }
  const at::Tensor y = ys.empty() ? at::zeros_like(u) : at::cat(ys, -1);
  if (final_state) *final_state = h.contiguous();  // not a view holding the last chunk
  return y + u * D.unsqueeze(-1);
}

at::Tensor selective_scan_naive(const at::Tensor& u_in, const at::Tensor& delta_in,
                                const at::Tensor& A_in, const at::Tensor& B_in,
                                const at::Tensor& C_in, const at::Tensor& D_in,
                                at::Tensor* final_state, int64_t /*chunk*/,
                                const at::Tensor& initial_state) {
  check_scan_inputs(u_in, delta_in, A_in, B_in, C_in, D_in);
  const at::Tensor u = f32(u_in), delta = f32(delta_in), A = f32(A_in), B = f32(B_in),
                   C = f32(C_in), D = f32(D_in);
  at::Tensor h = start_state(initial_state, u, A.size(1));  // [batch, inner, N]
  std::vector<at::Tensor> ys;
  for (int64_t t = 0; t < u.size(2); ++t) {
    const at::Tensor dt = delta.select(-1, t).unsqueeze(-1);  // [batch, inner, 1]
    h = at::exp(dt * A) * h + dt * u.select(-1, t).unsqueeze(-1) * B.select(-1, t).unsqueeze(1);
    ys.push_back((h * C.select(-1, t).unsqueeze(1)).sum(-1));
  }
  const at::Tensor y = ys.empty() ? at::zeros_like(u) : at::stack(ys, -1);
  if (final_state) *final_state = h;
  return y + u * D.unsqueeze(-1);
}

namespace {

// torch.nn.Conv1d's default bias: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = kernel
// for a depthwise convolution.
UniformInitConfig conv_bias_init(int64_t kernel) {
  UniformInitConfig init;
  init.high = 1.0 / std::sqrt(static_cast<double>(kernel));
  init.low = -init.high;
  return init;
}

// Inputs [batch, tokens, hidden] in and out. Padded tokens (false in Step::key_mask) are
// zeroed before the causal convolution and again after it, as transformers' MambaMixer and
// JambaMambaMixer do with `attention_mask`: the convolution window of a real token then sees
// zeros where the pads were (as at the start of an unpadded sequence), and a zero u adds
// nothing to the state, so left padding leaves the real tokens' outputs as without it.
class Mamba : public MixerModule {
 public:
  Mamba(const MambaConfig& c, Builder& b, const std::string& path)
      : hidden_(c.input.in_features),
        inner_(c.inner),
        state_size_(c.state_size),
        kernel_(c.conv_kernel_size),
        dt_rank_(nn::resolved(c.dt_rank, path, "dt_rank")),
        path_(path) {
    input_ = register_module("input", b.build_as<Linear>(c.input, child_path(c, path, c.input)));
    conv_ = register_module("conv", b.build_as<Weight>(c.conv, child_path(c, path, c.conv)));
    if (c.conv_bias) {  // declared by MambaConfig::parameters(), kept next to the weight
      const UniformInitConfig init = conv_bias_init(kernel_);
      conv_bias_ = b.parameter(*conv_, c, path, "conv.bias", &init, "bias");
    }
    selection_ = register_module("selection",
                                 b.build_as<Linear>(c.selection, child_path(c, path, c.selection)));
    dt_ = register_module("dt", b.build_as<Linear>(c.dt, child_path(c, path, c.dt)));
    output_ =
        register_module("output", b.build_as<Linear>(c.output, child_path(c, path, c.output)));
    a_log_ = register_module("a_log", b.build_as<Weight>(c.a_log, child_path(c, path, c.a_log)));
    d_ = register_module("d", b.build_as<Weight>(c.d, child_path(c, path, c.d)));
    if (c.state_normalization && c.state_normalization.type_name() != "none")
      state_norm_ =
          register_module("state_normalization",
                          b.build_as<NormModule>(*c.state_normalization,
                                                 child_path(c, path, *c.state_normalization)));
  }

  at::Tensor forward(const at::Tensor& x, Step& step) override {
    check_input(x);
    // Zero tokens have nothing to mix (the convolution cannot run on them) and leave a cache
    // as it was.
    if (x.size(1) == 0) return at::zeros({x.size(0), 0, hidden_}, x.options());
    const std::vector<at::Tensor> xz = input_->forward(x).chunk(2, -1);
    DecodeCache::State* slot = step.cache ? &cache_state(step, x.size(0)) : nullptr;
    const at::Tensor real = new_tokens_mask(step, x);  // [batch, 1, tokens] or undefined
    const at::Tensor u = zero_padding(
        at::silu(convolve(zero_padding(xz[0].transpose(1, 2), real), slot, step.past)), real);
    std::vector<at::Tensor> dt_b_c =
        selection_->forward(u.transpose(1, 2)).split({dt_rank_, state_size_, state_size_}, -1);
    if (state_norm_)
      for (int64_t place = 0; place < 3; ++place)
        dt_b_c[place] = state_norm_->forward(dt_b_c[place], place);
    // The reference adds dt_proj's bias inside the scan kernel (delta_bias); adding it in the
    // linear is the same sum, and keeps LoRA on `dt` working.
    const at::Tensor delta = at::softplus(f32(dt_->forward(dt_b_c[0])).transpose(1, 2));
    const at::Tensor A = -at::exp(f32(a_log_->weight));
    at::Tensor final_state;
    const at::Tensor initial_state = slot && step.past > 0 ? (*slot)["ssm"] : at::Tensor();
    const auto scan = u.is_cuda() ? selective_scan : selective_scan_naive;
    at::Tensor y = scan(u, delta, A, dt_b_c[1].transpose(1, 2), dt_b_c[2].transpose(1, 2),
                        d_->weight, slot ? &final_state : nullptr, kScanChunk, initial_state);
    if (slot) (*slot)["ssm"] = final_state;
    y = y * at::silu(f32(xz[1]).transpose(1, 2));
    return output_->forward(inner(y.transpose(1, 2).to(x.scalar_type())));
  }

  void pretty_print(std::ostream& s) const override {
    s << "Mamba(inner=" << inner_ << ", state_size=" << state_size_
      << ", conv_kernel_size=" << kernel_ << ", dt_rank=" << dt_rank_
      << ", conv_bias=" << (conv_bias_.defined() ? "true" : "false") << ")";
  }

 private:
  // Each chunk builds an L x L decay matrix per channel and state, so it does L times the
  // per-step work: short chunks are fastest (8 beat 16 and 32 forward and backward). On CPU
  // the per-step scan wins outright (1 x 512 x 16 x 1024 forward + backward: 0.54 s against
  // 3.1 s with chunks of 8), so the chunked scan runs on CUDA only, where the per-step loop's
  // thousands of small kernel launches are what costs.
  static constexpr int64_t kScanChunk = 8;

  void check_input(const at::Tensor& x) const {
    if (x.dim() != 3 || x.size(2) != hidden_)
      throw InputError(path_, "expected input of shape [batch, tokens, " + std::to_string(hidden_) +
                                  "], got " + c10::str(x.sizes()));
  }

  // The padding mask of the new tokens, shaped to multiply [batch, inner, tokens].
  at::Tensor new_tokens_mask(const Step& step, const at::Tensor& x) const {
    if (!step.key_mask.defined()) return {};
    const int64_t batch = x.size(0), tokens = x.size(1);
    if (step.key_mask.sizes() != at::IntArrayRef{batch, step.past + tokens})
      throw InputError(path_, "the padding mask must be [" + std::to_string(batch) + ", " +
                                  std::to_string(step.past + tokens) +
                                  "] (batch, cached + new tokens), got " +
                                  c10::str(step.key_mask.sizes()));
    return step.key_mask.narrow(1, step.past, tokens).unsqueeze(1);
  }

  static at::Tensor zero_padding(const at::Tensor& x, const at::Tensor& real) {
    return real.defined() ? x * real.to(x.scalar_type()) : x;
  }

  // The layer's "conv" [batch, inner, kernel - 1] and "ssm" [batch, inner, state_size] states.
  DecodeCache::State& cache_state(const Step& step, int64_t batch) const {
    DecodeCache::State& slot = step.cache->state(step.cache_key(path_));
    if (step.past > 0 && (!slot["ssm"].defined() || slot["ssm"].size(0) != batch))
      throw InputError(path_, "the decoding cache holds no state for this batch after " +
                                  std::to_string(step.past) + " tokens");
    return slot;
  }

  // Causal depthwise convolution of x [batch, inner, tokens]: the kernel sees the last
  // kernel - 1 inputs before the first token (zeros at the start of a sequence, the cached
  // ones when decoding continues), which is the reference's padding of kernel - 1 with the
  // first `tokens` outputs kept. Stores the new last kernel - 1 inputs in `slot`.
  at::Tensor convolve(const at::Tensor& x, DecodeCache::State* slot, int64_t past) const {
    const int64_t context = kernel_ - 1;
    const at::Tensor before = slot && past > 0
                                  ? (*slot)["conv"].to(x.scalar_type())
                                  : at::zeros({x.size(0), inner_, context}, x.options());
    const at::Tensor padded = at::cat({before, x}, -1);
    if (slot) (*slot)["conv"] = padded.narrow(-1, padded.size(-1) - context, context).clone();
    const int64_t stride = 1, padding = 0, dilation = 1;  // named: a literal 0 is ambiguous
    return at::conv1d(padded, conv_->weight, conv_bias_, stride, padding, dilation, inner_);
  }

  int64_t hidden_, inner_, state_size_, kernel_, dt_rank_;
  std::string path_;
  std::shared_ptr<Linear> input_, selection_, dt_, output_;
  std::shared_ptr<Weight> conv_, a_log_, d_;
  at::Tensor conv_bias_;
  std::shared_ptr<NormModule> state_norm_;
};

}  // namespace

void register_modules_mamba(nn::ModuleRegistry& modules) {
  modules.add<MambaConfig>([](const MambaConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<Mamba>(c, b, path);
  });
}

}  // namespace blocks
