// A Llama written by hand in plain LibTorch (Hugging Face modeling_llama.py, transcribed:
// LlamaRMSNorm, rotate_half rotary, repeat_kv, the same fused attention call as blocks), the
// baseline the model benchmarks hold blocks' YAML-built models against. `blocks_names` says which
// blocks parameter each of its parameters copies, so both compute the same thing.
#pragma once

#include <torch/nn/module.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/nn/torch_version.h"

namespace hand {

struct LlamaShape {
  int64_t hidden = 768, layers = 12, heads = 12, groups = 4, head_size = 64;
  int64_t intermediate = 2048, vocab = 32000;
  double epsilon = 1e-5, theta = 500000.0;
};

// nn.Linear without bias / nn.Embedding: one `weight` [out, in] (or [vocab, hidden]).
struct Weight : torch::nn::Module {
  Weight(int64_t rows, int64_t columns, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::empty({rows, columns}, o));
  }
  at::Tensor weight;
};

// The `weight` module `name` of `parent`, as a tensor to use directly.
inline at::Tensor weight(torch::nn::Module& parent, const std::string& name, int64_t rows,
                         int64_t columns, const at::TensorOptions& o) {
  return parent.register_module(name, std::make_shared<Weight>(rows, columns, o))->weight;
}

struct RmsNorm : torch::nn::Module {
  RmsNorm(int64_t width, double eps, const at::TensorOptions& o) : eps(eps) {
    weight = register_parameter("weight", at::ones({width}, o));
  }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
    return weight * (xf * at::rsqrt(variance + eps)).to(x.scalar_type());
  }
  at::Tensor weight;
  double eps;
};

inline at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// [batch, groups, tokens, d] -> [batch, heads, tokens, d], each key/value head repeated.
inline at::Tensor repeat_kv(const at::Tensor& x, int64_t repeats) {
  if (repeats == 1) return x;
  const int64_t b = x.size(0), g = x.size(1), t = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, g, repeats, t, d}).reshape({b, g * repeats, t, d});
}

struct Attention : torch::nn::Module {
  Attention(const LlamaShape& s, const at::TensorOptions& o)
      : heads(s.heads),
        groups(s.groups),
        head_size(s.head_size),
        scale(1.0 / std::sqrt(static_cast<double>(s.head_size))) {
    q_proj = weight(*this, "q_proj", heads * head_size, s.hidden, o);
    k_proj = weight(*this, "k_proj", groups * head_size, s.hidden, o);
    v_proj = weight(*this, "v_proj", groups * head_size, s.hidden, o);
    o_proj = weight(*this, "o_proj", s.hidden, heads * head_size, o);
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const int64_t b = x.size(0), t = x.size(1);
    at::Tensor q = at::linear(x, q_proj).view({b, t, heads, head_size}).transpose(1, 2);
    at::Tensor k = at::linear(x, k_proj).view({b, t, groups, head_size}).transpose(1, 2);
    at::Tensor v = at::linear(x, v_proj).view({b, t, groups, head_size}).transpose(1, 2);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    k = repeat_kv(k, heads / groups);
    v = repeat_kv(v, heads / groups);
    const at::Tensor out = blocks::nn::attention(q, k, v, {}, 0.0, /*causal=*/true, scale);
    return at::linear(out.transpose(1, 2).reshape({b, t, heads * head_size}), o_proj);
  }
  int64_t heads, groups, head_size;
  double scale;
  at::Tensor q_proj, k_proj, v_proj, o_proj;
};

struct Mlp : torch::nn::Module {
  Mlp(const LlamaShape& s, const at::TensorOptions& o) {
    gate_proj = weight(*this, "gate_proj", s.intermediate, s.hidden, o);
    up_proj = weight(*this, "up_proj", s.intermediate, s.hidden, o);
    down_proj = weight(*this, "down_proj", s.hidden, s.intermediate, o);
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::linear(at::silu(at::linear(x, gate_proj)) * at::linear(x, up_proj), down_proj);
  }
  at::Tensor gate_proj, up_proj, down_proj;
};

struct Layer : torch::nn::Module {
  Layer(const LlamaShape& s, const at::TensorOptions& o) {
    input_layernorm =
        register_module("input_layernorm", std::make_shared<RmsNorm>(s.hidden, s.epsilon, o));
    self_attn = register_module("self_attn", std::make_shared<Attention>(s, o));
    post_attention_layernorm = register_module("post_attention_layernorm",
                                               std::make_shared<RmsNorm>(s.hidden, s.epsilon, o));
    mlp = register_module("mlp", std::make_shared<Mlp>(s, o));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const at::Tensor h = x + self_attn->forward(input_layernorm->forward(x), cos, sin);
    return h + mlp->forward(post_attention_layernorm->forward(h));
  }
  std::shared_ptr<RmsNorm> input_layernorm, post_attention_layernorm;
  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<Mlp> mlp;
};

struct Llama : torch::nn::Module {
  Llama(const LlamaShape& s, const at::TensorOptions& o) : shape(s) {
    embed_tokens = weight(*this, "embed_tokens", s.vocab, s.hidden, o);
    auto list = register_module("layers", std::make_shared<torch::nn::Module>());
    for (int64_t i = 0; i < s.layers; ++i)
      layers.push_back(list->register_module(std::to_string(i), std::make_shared<Layer>(s, o)));
    norm = register_module("norm", std::make_shared<RmsNorm>(s.hidden, s.epsilon, o));
    lm_head = weight(*this, "lm_head", s.vocab, s.hidden, o);
    // LlamaRotaryEmbedding: inverse frequencies in float32, cos/sin made once per forward and
    // shared by all layers.
    const auto f = o.dtype(at::kFloat);
    inv_freq = 1.0 / at::pow(s.theta, at::arange(0, s.head_size, 2, f) / double(s.head_size));
  }
  at::Tensor forward(const at::Tensor& tokens) {
    return forward_embeddings(at::embedding(embed_tokens, tokens));
  }
  // inputs_embeds [batch, tokens, hidden]: what LLaVA hands its language model.
  at::Tensor forward_embeddings(at::Tensor x) {
    const int64_t t = x.size(1);
    const at::Tensor positions = at::arange(t, inv_freq.options()).unsqueeze(-1);
    const at::Tensor freqs = positions * inv_freq;  // [tokens, head_size / 2]
    const at::Tensor emb = at::cat({freqs, freqs}, -1);
    const at::Tensor cos = emb.cos().to(embed_tokens.scalar_type());
    const at::Tensor sin = emb.sin().to(embed_tokens.scalar_type());
    for (const auto& layer : layers) x = layer->forward(x, cos, sin);
    return at::linear(norm->forward(x), lm_head);
  }
  // The blocks parameter each of ours copies, by name; `prefix` is where the language model
  // sits in the blocks model ("" alone, "decoder." in a fusion model).
  std::map<std::string, std::string> blocks_names(const std::string& prefix = "") const {
    std::map<std::string, std::string> m = {
        {"embed_tokens.weight", prefix + "embeddings.word.weight"},
        {"norm.weight", prefix + "head.normalization.weight"},
        {"lm_head.weight", prefix + "head.output.weight"}};
    const std::vector<std::pair<std::string, std::string>> per_layer = {
        {"input_layernorm.weight", "normalization.weight"},
        {"self_attn.q_proj.weight", "mixer.query.weight"},
        {"self_attn.k_proj.weight", "mixer.key.weight"},
        {"self_attn.v_proj.weight", "mixer.value.weight"},
        {"self_attn.o_proj.weight", "mixer.output.weight"},
        {"post_attention_layernorm.weight", "mlp_normalization.weight"},
        {"mlp.gate_proj.weight", "mlp.gate.weight"},
        {"mlp.up_proj.weight", "mlp.up.weight"},
        {"mlp.down_proj.weight", "mlp.down.weight"}};
    for (int64_t i = 0; i < shape.layers; ++i)
      for (const auto& [ours, theirs] : per_layer)
        m["layers." + std::to_string(i) + "." + ours] =
            prefix + "decoder." + std::to_string(i) + "." + theirs;
    return m;
  }

  LlamaShape shape;
  at::Tensor embed_tokens, lm_head, inv_freq;
  std::vector<std::shared_ptr<Layer>> layers;
  std::shared_ptr<RmsNorm> norm;
};

}  // namespace hand
