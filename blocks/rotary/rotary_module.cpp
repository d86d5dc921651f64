// Modules of the rotary embeddings. Angles are position x inverse frequency, computed in
// float32 per call from the positions (so left padding and decoding offsets need no tables);
// `half` pairs (i, i + d/2) like Hugging Face Llama, `interleaved` pairs (2i, 2i + 1) like
// Meta's reference. xPos (torchscale's XPOS, xpos_relative_position.py) scales queries by
// s_i^((p - c) / scale_base) and keys by its inverse, with s_i = (2i + 0.4 d) / (1.4 d). The
// product depends on p_q - p_k only, but the factors alone grow with the distance from the
// centre c: torchscale centres on the sequence (c = ceil(n / 2) for n tokens), which keeps them
// within s_0^(+-n / (2 scale_base)) (12.2 and 0.08 at 2048 tokens instead of 150 and 0.0067 from
// position 0), far from float16's range for much longer. Cached keys keep the scale they were
// rotated with, so while decoding the centre is that of the cache's capacity, fixed for the
// whole generation; torchscale instead re-scales every cached key at every step.
// YaRN follows transformers' _compute_yarn_parameters (modeling_rope_utils.py, v4.55+ with
// `truncate`) in float32, and scales cos and sin by the attention factor as its rotary
// embedding's `attention_scaling` does.
#include <algorithm>
#include <cmath>
#include <functional>
#include <mutex>

#include "blocks/modules.h"
#include "blocks/rotary/rotary.h"

namespace blocks {

namespace {

at::Tensor inverse_frequencies(double theta, int64_t head_size) {
  const at::Tensor i = at::arange(0, head_size, 2, at::TensorOptions().dtype(at::kDouble));
  return at::pow(theta, -i / static_cast<double>(head_size)).to(at::kFloat);
}

// Meta's apply_scaling (Llama 3.1): long wavelengths slow down by scale_factor, short ones keep
// their frequency, and the band between is interpolated smoothly.
at::Tensor llama3_frequencies(const Llama3RotaryConfig& c, int64_t head_size) {
  at::Tensor freqs = inverse_frequencies(c.theta, head_size).to(at::kDouble);
  const double low_wavelen = c.original_context_length / c.low_frequency_factor;
  const double high_wavelen = c.original_context_length / c.high_frequency_factor;
  auto acc = freqs.accessor<double, 1>();
  for (int64_t i = 0; i < freqs.size(0); ++i) {
    const double freq = acc[i];
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      acc[i] = freq / c.scale_factor;
    } else {
      const double smooth = (c.original_context_length / wavelen - c.low_frequency_factor) /
                            (c.high_frequency_factor - c.low_frequency_factor);
      acc[i] = (1 - smooth) * freq / c.scale_factor + smooth * freq;
    }
  }
  return freqs.to(at::kFloat);
}

// The dimension (a fractional index into the head_size / 2 frequencies) whose wavelength fits
// `turns` times into the original context.
double yarn_correction_dim(const YarnRotaryConfig& c, int64_t head_size, double turns) {
  return head_size * std::log(c.original_context_length / (turns * 2 * M_PI)) /
         (2 * std::log(c.theta));
}

// Frequency i mixes theta^(-2i/d) (weight 1 - ramp(i)) with it divided by scale_factor (weight
// ramp(i)); the ramp rises linearly from 0 at the beta_fast dimension to 1 at the beta_slow one.
at::Tensor yarn_frequencies(const YarnRotaryConfig& c, int64_t head_size) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor pos_freqs =
      at::pow(c.theta, at::arange(0, head_size, 2, f32) / static_cast<double>(head_size));
  const at::Tensor extrapolation = pos_freqs.reciprocal();
  const at::Tensor interpolation = (pos_freqs * c.scale_factor).reciprocal();
  double low = yarn_correction_dim(c, head_size, c.beta_fast);
  double high = yarn_correction_dim(c, head_size, c.beta_slow);
  if (c.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(head_size - 1));
  if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp
  const at::Tensor ramp = ((at::arange(head_size / 2, f32) - low) / (high - low)).clamp(0, 1);
  const at::Tensor keep = 1 - ramp;
  return interpolation * (1 - keep) + extrapolation * keep;
}

class Rotary : public RotaryModule {
 public:
  // scale_base > 0 turns xPos's decay on; attention_factor (YaRN) multiplies cos and sin.
  // `frequencies` makes the inverse frequencies at the first forward, not here: a build on the
  // meta device (summary) then allocates nothing proportional to the head size.
  Rotary(std::string layout, int64_t head_size, std::function<at::Tensor()> frequencies,
         double scale_base = 0, double attention_factor = 1)
      : interleaved_(layout == "interleaved"),
        head_size_(head_size),
        frequencies_(std::move(frequencies)),
        scale_base_(scale_base),
        attention_factor_(attention_factor) {}

  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& q, const at::Tensor& k,
                                            const Step& step) override {
    const at::Tensor& positions = step.positions;
    std::call_once(made_, [&] {
      inv_freq_ = frequencies_();
      if (scale_base_ > 0) {
        const at::Tensor i = at::arange(0, head_size_, 2, at::TensorOptions().dtype(at::kFloat));
        xpos_scale_ = (i + 0.4 * head_size_) / (1.4 * head_size_);
      }
    });
    if (inv_freq_.device() != q.device()) {
      inv_freq_ = inv_freq_.to(q.device());
      if (xpos_scale_.defined()) xpos_scale_ = xpos_scale_.to(q.device());
    }
    // [batch, tokens, 1, head_size / 2]
    const at::Tensor pos = positions.to(at::kFloat).unsqueeze(-1);
    const at::Tensor angles = (pos * inv_freq_).unsqueeze(2);
    at::Tensor cos = angles.cos(), sin = angles.sin();
    if (attention_factor_ != 1.0) {
      cos = cos * attention_factor_;
      sin = sin * attention_factor_;
    }
    if (!xpos_scale_.defined()) return {rotate(q, cos, sin), rotate(k, cos, sin)};
    const int64_t span = step.cache ? step.cache->capacity() : step.past + q.size(1);
    const double centre = static_cast<double>((span + 1) / 2);
    const at::Tensor scale = at::pow(xpos_scale_, ((pos - centre) / scale_base_).unsqueeze(2));
    return {rotate(q, cos * scale, sin * scale), rotate(k, cos / scale, sin / scale)};
  }

  void pretty_print(std::ostream& s) const override {
    s << "Rotary(layout=" << (interleaved_ ? "interleaved" : "half")
      << ", head_size=" << head_size_;
    if (scale_base_ > 0) s << ", xpos_scale_base=" << scale_base_;
    if (attention_factor_ != 1.0) s << ", attention_factor=" << attention_factor_;
    s << ")";
  }

 private:
  at::Tensor rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const {
    const at::Tensor xf = x.to(at::kFloat);
    at::Tensor out;
    if (interleaved_) {
      const at::Tensor pairs = xf.unflatten(-1, {head_size_ / 2, 2});
      const at::Tensor a = pairs.select(-1, 0), b = pairs.select(-1, 1);
      out = at::stack({a * cos - b * sin, a * sin + b * cos}, -1).flatten(-2);
    } else {
      const at::Tensor a = xf.narrow(-1, 0, head_size_ / 2);
      const at::Tensor b = xf.narrow(-1, head_size_ / 2, head_size_ / 2);
      out = at::cat({a * cos - b * sin, b * cos + a * sin}, -1);
    }
    return out.to(x.scalar_type());
  }

  bool interleaved_;
  int64_t head_size_;
  std::function<at::Tensor()> frequencies_;
  std::once_flag made_;
  at::Tensor inv_freq_;  // not a parameter: derived from the config
  double scale_base_;
  at::Tensor xpos_scale_;
  double attention_factor_;
};

class NoRotary : public RotaryModule {
 public:
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& q, const at::Tensor& k,
                                            const Step&) override {
    return {q, k};
  }
};

}  // namespace

// Rotary modules read the head size that the attention gave their config during resolution.
void register_modules_rotary(nn::ModuleRegistry& modules) {
  modules.add<NoRotaryConfig>([](const NoRotaryConfig&, Builder&, const std::string&) {
    return std::make_shared<NoRotary>();
  });
  modules.add<DefaultRotaryConfig>([](const DefaultRotaryConfig& c, Builder&, const std::string&) {
    return std::make_shared<Rotary>(c.layout, c.head_size,
                                    [c] { return inverse_frequencies(c.theta, c.head_size); });
  });
  modules.add<Llama3RotaryConfig>([](const Llama3RotaryConfig& c, Builder&, const std::string&) {
    return std::make_shared<Rotary>(c.layout, c.head_size,
                                    [c] { return llama3_frequencies(c, c.head_size); });
  });
  modules.add<XposRotaryConfig>([](const XposRotaryConfig& c, Builder&, const std::string&) {
    return std::make_shared<Rotary>(
        c.layout, c.head_size, [c] { return inverse_frequencies(c.theta, c.head_size); },
        c.scale_base);
  });
  modules.add<YarnRotaryConfig>([](const YarnRotaryConfig& c, Builder&, const std::string& path) {
    return std::make_shared<Rotary>(c.layout, c.head_size,
                                    [c] { return yarn_frequencies(c, c.head_size); },
                                    /*scale_base=*/0,
                                    nn::resolved(c.attention_factor, path, "attention_factor"));
  });
}

}  // namespace blocks
