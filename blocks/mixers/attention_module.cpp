// The attention module: projections, query/key norm, rotary, grouped heads, causal / sliding
// window / padding masks and a decoding cache, around LibTorch's fused scaled-dot-product
// attention (build/torch_version.h).
#include <cmath>

#include "blocks/linear/linear_module.h"
#include "blocks/mixers/attention.h"
#include "blocks/modules.h"
#include "framework/nn/torch_version.h"

namespace blocks {

namespace {

class Attention : public MixerModule {
 public:
  Attention(const AttentionConfig& c, Builder& b, const std::string& path)
      : heads_(c.heads),
        groups_(nn::resolved(c.head_groups, path, "head_groups")),
        head_size_(nn::resolved(c.head_size, path, "head_size")),
        causal_(c.causal),
        window_(c.window_size.value_or(0)),
        scale_(nn::resolved(c.softmax_scale, path, "softmax_scale")),
        dropout_(c.dropout),
        path_(path) {
    query_ = register_module("query", b.build_as<Linear>(c.query, child_path(c, path, c.query)));
    key_ = register_module("key", b.build_as<Linear>(c.key, child_path(c, path, c.key)));
    value_ = register_module("value", b.build_as<Linear>(c.value, child_path(c, path, c.value)));
    output_ =
        register_module("output", b.build_as<Linear>(c.output, child_path(c, path, c.output)));
    if (c.qk_norm && c.qk_norm.type_name() != "none")
      qk_norm_ = register_module(
          "qk_norm", b.build_as<NormModule>(*c.qk_norm, child_path(c, path, *c.qk_norm)));
    if (c.rotary && c.rotary.type_name() != "none") {
      rotary_ = register_module(
          "rotary", b.build_as<RotaryModule>(*c.rotary, child_path(c, path, *c.rotary)));
    }
  }

  at::Tensor forward(const at::Tensor& x, Step& step) override {
    const int64_t batch = x.size(0), tokens = x.size(1);
    at::Tensor q = query_->forward(x).view({batch, tokens, heads_, head_size_});
    at::Tensor k = key_->forward(x).view({batch, tokens, groups_, head_size_});
    at::Tensor v = value_->forward(x).view({batch, tokens, groups_, head_size_});
    if (qk_norm_) {
      q = qk_norm_->forward(q, 0);
      k = qk_norm_->forward(k, 1);
    }
    if (rotary_) std::tie(q, k) = rotary_->forward(q, k, step);
    q = q.transpose(1, 2);
    k = k.transpose(1, 2);
    v = v.transpose(1, 2);
    if (step.cache) std::tie(k, v) = append_to_cache(k, v, step);
    const int64_t keys = k.size(2);
    const at::Tensor mask = make_mask(step, tokens, keys, x.device());
    const double dropout = is_training() ? dropout_ : 0.0;
    at::Tensor out;
    if (groups_ != heads_ && tokens == 1) {
      // One new token (decoding): the heads of a group become query rows against the group's
      // keys, so the cache is never copied out per head (at 1024 cached tokens this halves
      // attention's cost). A single query's mask depends on the key only, so it broadcasts.
      const at::Tensor rows = q.reshape({batch, groups_, heads_ / groups_, head_size_});
      out = nn::attention(rows, k, v, mask, dropout, false, scale_)
                .reshape({batch, heads_, 1, head_size_});
    } else {
      if (groups_ != heads_) std::tie(k, v) = repeat_groups(k, v);
      out = nn::attention(q, k, v, mask, dropout, causal_ && !mask.defined(), scale_);
    }
    out = out.transpose(1, 2).reshape({batch, tokens, heads_ * head_size_});
    return output_->forward(inner(out));
  }

  void pretty_print(std::ostream& s) const override {
    s << "Attention(heads=" << heads_ << ", head_groups=" << groups_
      << ", head_size=" << head_size_ << ", causal=" << (causal_ ? "true" : "false");
    if (window_ > 0) s << ", window_size=" << window_;
    s << ", softmax_scale=" << scale_ << ")";
  }

 private:
  // Each key/value head serves heads / groups query heads: [batch, heads, keys, head_size].
  std::pair<at::Tensor, at::Tensor> repeat_groups(const at::Tensor& k, const at::Tensor& v) const {
    const int64_t batch = k.size(0), keys = k.size(2), per_group = heads_ / groups_;
    auto repeat = [&](const at::Tensor& t) {
      return t.unsqueeze(2)
          .expand({batch, groups_, per_group, keys, head_size_})
          .reshape({batch, heads_, keys, head_size_});
    };
    return {repeat(k), repeat(v)};
  }

  // Writes this call's keys and values at [past, past + tokens) of the layer's "key" and
  // "value" buffers [batch, groups, capacity, head_size] and returns views of everything cached
  // so far.
  std::pair<at::Tensor, at::Tensor> append_to_cache(const at::Tensor& k, const at::Tensor& v,
                                                    Step& step) {
    DecodeCache::State& state = step.cache->state(step.cache_key(path_));
    at::Tensor& keys = state["key"];
    at::Tensor& values = state["value"];
    const int64_t batch = k.size(0), tokens = k.size(2), end = step.past + tokens;
    if (end > step.cache->capacity())
      throw InputError(path_, "the decoding cache holds " +
                                  std::to_string(step.cache->capacity()) + " tokens; " +
                                  std::to_string(end) + " were asked for");
    if (!keys.defined() || keys.size(0) != batch) {
      if (step.past > 0)
        throw InputError(path_, "the decoding cache was filled with a different batch size");
      keys = at::empty({batch, groups_, step.cache->capacity(), head_size_}, k.options());
      values = at::empty_like(keys);
    }
    keys.narrow(2, step.past, tokens).copy_(k);
    values.narrow(2, step.past, tokens).copy_(v);
    return {keys.narrow(2, 0, end), values.narrow(2, 0, end)};
  }

  // Boolean [batch or 1, 1, tokens, keys] (true: may attend), or undefined when the fused
  // kernel's own causal mask (or none) is exact. Query i sits at cache index past + i.
  at::Tensor make_mask(const Step& step, int64_t tokens, int64_t keys,
                       const c10::Device& device) const {
    const bool offset = keys != tokens;
    if (!step.key_mask.defined() && window_ == 0 && (!causal_ || !offset)) return {};
    const auto options = at::TensorOptions().dtype(at::kLong).device(device);
    const at::Tensor query_index = at::arange(keys - tokens, keys, options).unsqueeze(1);
    const at::Tensor key_index = at::arange(keys, options).unsqueeze(0);
    at::Tensor mask = at::ones({tokens, keys}, options.dtype(at::kBool));
    if (causal_) mask = mask & (key_index <= query_index);
    if (window_ > 0) mask = mask & (key_index > query_index - window_);
    mask = mask.unsqueeze(0).unsqueeze(0);
    if (step.key_mask.defined()) {
      if (step.key_mask.size(-1) != keys)
        throw InputError(path_, "the attention mask covers " +
                                    std::to_string(step.key_mask.size(-1)) + " tokens; " +
                                    std::to_string(keys) + " are attended");
      // A padding query still sees itself, so its row is never empty (no NaN).
      const at::Tensor self = (key_index == query_index).unsqueeze(0).unsqueeze(0);
      mask = (mask & step.key_mask.to(at::kBool).unsqueeze(1).unsqueeze(1)) | self;
    }
    return mask;
  }

  int64_t heads_, groups_, head_size_;
  bool causal_;
  int64_t window_;
  double scale_, dropout_;
  std::string path_;
  std::shared_ptr<Linear> query_, key_, value_, output_;
  std::shared_ptr<NormModule> qk_norm_;
  std::shared_ptr<RotaryModule> rotary_;
};

}  // namespace

void register_modules_attention(nn::ModuleRegistry& modules) {
  modules.add<AttentionConfig>([](const AttentionConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<Attention>(c, b, path);
  });
}

}  // namespace blocks
