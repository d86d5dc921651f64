// The module side of the kinds in kinds.h: what a mixer, MLP, normalization, rotary embedding
// or block module offers its parent, and the state one forward call shares (positions, masks,
// the decoding cache, auxiliary losses). Types implement these in their *_module.cpp files.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

#include "framework/nn/builder.h"

namespace blocks {

using nn::Builder;
using nn::InputError;
using nn::child_path;

// Keys, values and recurrent states of earlier tokens, one slot per attention or Mamba layer,
// for incremental decoding. Attention keys and values live in buffers of `capacity` tokens
// allocated on first use, so appending a token copies only that token.
class DecodeCache {
 public:
  explicit DecodeCache(int64_t capacity) : capacity_(capacity) {}
  struct Slot {
    at::Tensor key, value;          // [batch, groups, capacity, head_size]
    at::Tensor conv_state, ssm_state;  // Mamba: [batch, inner, kernel - 1], [batch, inner, N]
  };
  int64_t capacity() const { return capacity_; }
  // Tokens already in the cache (positions 0..length-1).
  int64_t length() const { return length_; }
  Slot& slot(int64_t index) {
    if (index >= static_cast<int64_t>(slots_.size())) slots_.resize(index + 1);
    return slots_[index];
  }
  // Called by the model once all layers have seen `tokens` new tokens.
  void advance(int64_t tokens) { length_ += tokens; }
  void clear() {
    slots_.clear();
    length_ = 0;
  }

 private:
  int64_t capacity_;
  int64_t length_ = 0;
  std::vector<Slot> slots_;
};

// What one forward call shares across layers.
struct Step {
  at::Tensor positions;  // int64 [batch, tokens]: absolute positions of the new tokens
  // bool [batch, past + tokens]: true where a key is a real token (padding masks); undefined
  // when every token is real.
  at::Tensor key_mask;
  DecodeCache* cache = nullptr;
  int64_t past = 0;                     // tokens already in the cache
  std::vector<at::Tensor> aux_losses;  // weighted auxiliary losses (MoE balance, z-loss)
};

class NormModule : public torch::nn::Module {
 public:
  // Normalizes `x` at place `place` (qk_norm: 0 queries, 1 keys; Sub-LN: 0 mixer, 1 MLP).
  virtual at::Tensor forward(const at::Tensor& x, int64_t place = 0) = 0;
};

// Rotates queries and keys [batch, tokens, heads, head_size] by their positions [batch, tokens].
class RotaryModule : public torch::nn::Module {
 public:
  virtual std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& q, const at::Tensor& k,
                                                    const at::Tensor& positions) = 0;
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
