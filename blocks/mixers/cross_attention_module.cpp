#include "blocks/mixers/cross_attention_module.h"

#include "framework/nn/torch_version.h"

namespace blocks {

CrossAttention::CrossAttention(const CrossAttentionConfig& c, Builder& b, const std::string& path)
    : heads_(c.heads),
      groups_(nn::resolved(c.head_groups, path, "head_groups")),
      head_size_(nn::resolved(c.head_size, path, "head_size")),
      memory_width_(nn::resolved(c.memory_width, path, "memory_width")),
      scale_(nn::resolved(c.softmax_scale, path, "softmax_scale")),
      dropout_(c.dropout),
      memory_(c.memory),
      path_(path) {
  query_ = register_module("query", b.build_as<Linear>(c.query, child_path(c, path, c.query)));
  key_ = register_module("key", b.build_as<Linear>(c.key, child_path(c, path, c.key)));
  value_ = register_module("value", b.build_as<Linear>(c.value, child_path(c, path, c.value)));
  output_ = register_module("output", b.build_as<Linear>(c.output, child_path(c, path, c.output)));
  if (c.qk_norm && c.qk_norm.type_name() != "none")
    qk_norm_ = register_module(
        "qk_norm", b.build_as<NormModule>(*c.qk_norm, child_path(c, path, *c.qk_norm)));
}

at::Tensor CrossAttention::forward(const at::Tensor& x, Step& step) {
  return attend(x, step).first;
}

std::pair<at::Tensor, at::Tensor> CrossAttention::keys_and_values(const Memory* memory,
                                                                  int64_t batch, Step& step) {
  DecodeCache::State* state = step.cache ? &step.cache->state(step.cache_key(path_)) : nullptr;
  if (!memory || !memory->values.defined()) {
    if (state && state->count("key")) {
      const at::Tensor& keys = state->at("key");
      if (keys.size(0) != batch)
        throw InputError(path_, "the decoding cache holds memory '" + memory_ + "' for batch " +
                                    std::to_string(keys.size(0)) + ", this step has batch " +
                                    std::to_string(batch));
      return {keys, state->at("value")};
    }
    std::string given;
    if (step.memories)
      for (const auto& [name, m] : *step.memories)
        if (m.values.defined()) given += (given.empty() ? "" : ", ") + name;
    throw InputError(path_, "needs memory '" + memory_ + "', which this call does not give" +
                                (state ? " and the decoding cache does not hold" : "") +
                                " (memories given: " + (given.empty() ? "none" : given) + ")");
  }
  const at::Tensor& values = memory->values;
  if (values.dim() != 3 || values.size(0) != batch || values.size(2) != memory_width_)
    throw InputError(path_, "memory '" + memory_ + "' must be [" + std::to_string(batch) +
                                ", memory tokens, " + std::to_string(memory_width_) + "], got " +
                                c10::str(values.sizes()));
  const int64_t length = values.size(1);
  const at::Tensor m = values.to(key_->weight.scalar_type());
  at::Tensor k = key_->forward(m).view({batch, length, groups_, head_size_});
  at::Tensor v = value_->forward(m).view({batch, length, groups_, head_size_});
  if (qk_norm_) k = qk_norm_->forward(k, 1);
  k = k.transpose(1, 2);
  v = v.transpose(1, 2);
  if (state) {
    (*state)["key"] = k;
    (*state)["value"] = v;
  }
  return {k, v};
}

std::pair<at::Tensor, at::Tensor> CrossAttention::attend(const at::Tensor& x, Step& step) {
  const int64_t batch = x.size(0), tokens = x.size(1);
  const Memory* memory = nullptr;
  if (step.memories)
    if (auto it = step.memories->find(memory_); it != step.memories->end()) memory = &it->second;
  auto [k, v] = keys_and_values(memory, batch, step);
  const int64_t length = k.size(2);
  at::Tensor q = query_->forward(x).view({batch, tokens, heads_, head_size_});
  if (qk_norm_) q = qk_norm_->forward(q, 0);
  q = q.transpose(1, 2);
  at::Tensor mask, attended;
  if (memory && memory->mask.defined()) {
    const at::Tensor& given = memory->mask;
    const bool per_token = given.dim() == 3;
    if ((given.dim() != 2 && !per_token) || given.size(0) != batch ||
        given.size(-1) != length || (per_token && given.size(1) != tokens))
      throw InputError(path_, "the mask of memory '" + memory_ + "' must be [" +
                                  std::to_string(batch) + ", " + std::to_string(length) +
                                  "] or [" + std::to_string(batch) + ", " +
                                  std::to_string(tokens) + ", " + std::to_string(length) +
                                  "] (batch, tokens, memory tokens), got " +
                                  c10::str(given.sizes()));
    mask = given.to(at::kBool);
    if (!per_token) mask = mask.unsqueeze(1);  // [batch, 1, memory]
    attended = mask.any(-1, true);
    mask = (mask | attended.logical_not()).unsqueeze(1);  // [batch, 1, tokens or 1, memory]
  }
  // The heads of a group become query rows against the group's keys (no causal order here), so
  // the keys and values are never copied out per head: decoding reads the cache as it is.
  const int64_t per_group = heads_ / groups_;
  if (per_group > 1) {
    q = q.reshape({batch, groups_, per_group * tokens, head_size_});
    if (mask.defined() && mask.size(2) == tokens && tokens > 1)
      mask = mask.repeat({1, 1, per_group, 1});
  }
  const double dropout = is_training() ? dropout_ : 0.0;
  at::Tensor out = nn::attention(q, k, v, mask, dropout, false, scale_);
  if (per_group > 1) out = out.reshape({batch, heads_, tokens, head_size_});
  out = out.transpose(1, 2).reshape({batch, tokens, heads_ * head_size_});
  return {output_->forward(inner(out)), attended};
}

void CrossAttention::pretty_print(std::ostream& s) const {
  s << "CrossAttention(memory=" << memory_ << ", memory_width=" << memory_width_
    << ", heads=" << heads_ << ", head_groups=" << groups_ << ", head_size=" << head_size_
    << ", softmax_scale=" << scale_ << ")";
}

void register_modules_cross_attention(nn::ModuleRegistry& modules) {
  modules.add<CrossAttentionConfig>(
      [](const CrossAttentionConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<CrossAttention>(c, b, path);
      });
}

}  // namespace blocks
