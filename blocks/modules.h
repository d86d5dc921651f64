// The module side of the kinds in kinds.h: what a mixer, MLP, normalization, rotary embedding
// or block module offers its parent, and the state one forward call shares (positions, masks,
// the decoding cache, auxiliary losses). Types implement these in their *_module.cpp files.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/nn/builder.h"

namespace blocks {

using nn::Builder;
using nn::child_path;
using nn::InputError;

// What earlier tokens left for incremental decoding, as named tensors per layer (CTranslate2's
// DecoderState map): attention keeps "key" and "value" buffers of `capacity` tokens allocated on
// first use (appending a token copies only that token), Mamba its "conv" and "ssm" states,
// cross-attention the keys and values of its memory, computed once. A layer's state is keyed by
// its place in the model (Step::layer) and its config path, so a shared block running at
// several positions keeps one state per position.
class DecodeCache {
 public:
  using State = std::map<std::string, at::Tensor>;
  explicit DecodeCache(int64_t capacity) : capacity_(capacity) {}
  int64_t capacity() const { return capacity_; }
  // Tokens already in the cache (positions 0..length-1).
  int64_t length() const { return length_; }
  // The state of the layer at `key` (see Step::cache_key), created empty on first use.
  State& state(const std::string& key) { return states_[key]; }
  const std::map<std::string, State>& states() const { return states_; }
  // Called by the model once all layers have seen `tokens` new tokens.
  void advance(int64_t tokens) { length_ += tokens; }
  void clear() {
    states_.clear();
    length_ = 0;
  }

 private:
  int64_t capacity_;
  int64_t length_ = 0;
  std::map<std::string, State> states_;
};

// A sequence that layers may attend to besides their input (an encoder's output for
// cross-attention): values [batch, length, width] and, optionally, a bool mask, true where a
// token may attend to a position: [batch, length] for every token alike, or
// [batch, tokens, length] per token of the running step. While decoding, a step may leave the
// values out: cross-attention layers then use the keys and values they cached at prefill.
struct Memory {
  at::Tensor values;
  at::Tensor mask;
};

struct Step;

// Layers that run around the leaf blocks of a decoder without being part of it (deep fusion's
// gated cross-attention layers): the decoder's sequences call it before and after each of their
// leaf blocks, by the block's index in the decoder, so the decoder keeps its own numbering.
class LayerHook {
 public:
  virtual ~LayerHook() = default;
  virtual at::Tensor before(int64_t layer, const at::Tensor& x, Step& step) = 0;
  virtual at::Tensor after(int64_t layer, const at::Tensor& x, Step& step) = 0;
};

// What one forward call shares across layers.
struct Step {
  at::Tensor positions;  // int64 [batch, tokens]: absolute positions of the new tokens
  // bool [batch, past + tokens]: true where a key is a real token (padding masks); undefined
  // when every token is real.
  at::Tensor key_mask;
  DecodeCache* cache = nullptr;
  int64_t past = 0;                    // tokens already in the cache
  std::vector<at::Tensor> aux_losses;  // weighted auxiliary losses (MoE balance, z-loss)
  // Named memories for cross-attention layers; null when the model was given none.
  const std::map<std::string, Memory>* memories = nullptr;
  // Where in the model the running layer sits ("decoder.3"): sequences extend it per layer.
  std::string layer;
  // Outputs of the leaf blocks of the model's decoder, in order, when the caller asked for
  // hidden states; null otherwise.
  std::vector<at::Tensor>* block_outputs = nullptr;
  // Runs around each leaf block of the decoder; null when nothing does. `leaf` counts the leaf
  // blocks run so far (the index the hook is called with).
  LayerHook* hook = nullptr;
  int64_t leaf = 0;

  // The decode-cache key of the module at config path `path` in the running layer.
  std::string cache_key(const std::string& path) const { return layer + "|" + path; }
};

class NormModule : public torch::nn::Module {
 public:
  // Normalizes `x` at place `place` (qk_norm: 0 queries, 1 keys; Sub-LN: 0 mixer, 1 MLP).
  virtual at::Tensor forward(const at::Tensor& x, int64_t place = 0) = 0;
};

// Rotates queries and keys [batch, tokens, heads, head_size] by the step's positions
// [batch, tokens]; the step also tells how long the sequence can grow (xPos centres on it).
class RotaryModule : public torch::nn::Module {
 public:
  virtual std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& q, const at::Tensor& k,
                                                    const Step& step) = 0;
};

// Mixers and MLPs: [batch, tokens, hidden] in and out. The block may hand them the Sub-LN
// normalization that applies before their output projection.
class BranchModule : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& x, Step& step) = 0;
  void set_inner_normalization(std::shared_ptr<NormModule> norm, int64_t place) {
    inner_norm_ = std::move(norm);
    inner_place_ = place;
  }

 protected:
  at::Tensor inner(const at::Tensor& x) const {
    return inner_norm_ ? inner_norm_->forward(x, inner_place_) : x;
  }

 private:
  std::shared_ptr<NormModule> inner_norm_;  // owned by the block, not registered here
  int64_t inner_place_ = 0;
};

class MixerModule : public BranchModule {};
class MlpModule : public BranchModule {};

// Blocks and sequences of blocks: [batch, tokens, hidden] in and out.
class BlockModule : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& x, Step& step) = 0;
};

// Dropout that is a no-op at p = 0 or in evaluation.
inline at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  return p > 0 && training ? at::dropout(x, p, true) : x;
}

}  // namespace blocks
