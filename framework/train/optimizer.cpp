#include "framework/train/optimizer.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <map>
#include <set>
#include <unordered_set>

#include "framework/weights/name_pattern.h"

namespace blocks::train {

namespace {

bool matches_any(const std::vector<weights::NamePattern>& patterns, const std::string& name) {
  for (const auto& pattern : patterns)
    if (pattern.full_match(name)) return true;
  return false;
}

// PyTorch's _single_tensor_adamw on one float32 stretch, in its order of operations (so that
// float results agree with torch.optim.AdamW's to the last bits the order allows):
//   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g;
//   p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
struct Update {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps;
  void operator()(float* p, const float* g, float* m, float* v, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) {
      p[i] *= decay;
      m[i] = m[i] * beta1 + g[i] * one_minus_beta1;
      v[i] = v[i] * beta2 + (g[i] * g[i]) * one_minus_beta2;
      p[i] += -step_size * (m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps));
    }
  }
};

}  // namespace

AdamW::AdamW(const nn::ParameterTable& table, const AdamWConfig& config) : config_(config) {
  std::vector<weights::NamePattern> no_decay;
  for (const auto& text : config.no_decay) no_decay.emplace_back(text);
  std::unordered_set<const void*> seen;
  std::map<std::pair<double, bool>, size_t> group_of;
  for (const auto& record : table) {
    if (!seen.insert(record.tensor.unsafeGetTensorImpl()).second) continue;
    if (!record.trainable || record.lr_scale == 0) {
      record.tensor.set_requires_grad(false);
      continue;
    }
    const bool decays = config.weight_decay > 0 &&
                        record.tensor.dim() >= config.decay_min_dims &&
                        !matches_any(no_decay, record.name);
    auto [it, added] = group_of.try_emplace({record.lr_scale, decays}, groups_.size());
    if (added) groups_.push_back({record.lr_scale, decays ? config.weight_decay : 0.0});
    groups_[it->second].members.push_back(parameters_.size());
    parameters_.push_back({record.name, record.tensor, decays});
  }
  for (auto& group : groups_) flatten(group);
}

// Moves each member's values into one buffer and makes the parameter and its gradient views
// of it: autograd then accumulates in place (AccumulateGrad adds into a defined .grad()).
void AdamW::flatten(Group& group) {
  int64_t numel = 0;
  for (size_t i : group.members) numel += parameters_[i].tensor.numel();
  const at::Tensor& first = parameters_[group.members.front()].tensor;
  const auto options = first.options().requires_grad(false);
  group.values = at::empty({numel}, options);
  group.grads = at::zeros({numel}, options);
  group.exp_avg = at::zeros({numel}, options);
  group.exp_avg_sq = at::zeros({numel}, options);
  int64_t offset = 0;
  at::NoGradGuard no_grad;
  for (size_t i : group.members) {
    at::Tensor& tensor = parameters_[i].tensor;
    const int64_t n = tensor.numel();
    at::Tensor values = group.values.narrow(0, offset, n).view(tensor.sizes());
    values.copy_(tensor);
    tensor.set_data(values);
    tensor.mutable_grad() = group.grads.narrow(0, offset, n).view(tensor.sizes());
    offset += n;
  }
}

void AdamW::zero_grad() {
  for (auto& group : groups_) group.grads.zero_();
}

double AdamW::clip_grad_norm(double max_norm) {
  double squares = 0;
  for (const auto& group : groups_) {
    const double norm = group.grads.norm().item<double>();
    squares += norm * norm;
  }
  const double norm = std::sqrt(squares);
  if (max_norm > 0) {
    const double coefficient = max_norm / (norm + 1e-6);
    if (coefficient < 1)
      for (auto& group : groups_) group.grads.mul_(coefficient);
  }
  return norm;
}

bool AdamW::gradients_finite() const {
  for (const auto& group : groups_)
    if (!group.grads.isfinite().all().item<bool>()) return false;
  return true;
}

void AdamW::step(double lr) {
  ++steps_;
  const double bc1 = 1 - std::pow(config_.beta1, static_cast<double>(steps_));
  const double bc2 = 1 - std::pow(config_.beta2, static_cast<double>(steps_));
  at::NoGradGuard no_grad;
  for (auto& group : groups_) {
    const double rate = lr * group.lr_scale;
    const double step_size = rate / bc1;
    const double bc2_sqrt = std::sqrt(bc2);
    if (group.values.scalar_type() == at::kFloat && group.values.device().is_cpu()) {
      const Update update{static_cast<float>(1 - rate * group.weight_decay),
                          static_cast<float>(config_.beta1),
                          static_cast<float>(1 - config_.beta1),
                          static_cast<float>(config_.beta2),
                          static_cast<float>(1 - config_.beta2),
                          static_cast<float>(step_size),
                          static_cast<float>(bc2_sqrt),
                          static_cast<float>(config_.eps)};
      float* p = group.values.data_ptr<float>();
      const float* g = group.grads.data_ptr<float>();
      float* m = group.exp_avg.data_ptr<float>();
      float* v = group.exp_avg_sq.data_ptr<float>();
      at::parallel_for(0, group.values.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
        update(p + begin, g + begin, m + begin, v + begin, end - begin);
      });
      continue;
    }
    // Other dtypes and devices: the same steps as tensor operations.
    if (group.weight_decay > 0) group.values.mul_(1 - rate * group.weight_decay);
    group.exp_avg.mul_(config_.beta1).add_(group.grads, 1 - config_.beta1);
    group.exp_avg_sq.mul_(config_.beta2).addcmul_(group.grads, group.grads, 1 - config_.beta2);
    const at::Tensor denom = (group.exp_avg_sq.sqrt() / bc2_sqrt).add_(config_.eps);
    group.values.addcdiv_(group.exp_avg, denom, -step_size);
  }
}

int64_t AdamW::trainable_numel() const {
  int64_t n = 0;
  for (const auto& group : groups_) n += group.values.numel();
  return n;
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& group : groups_) {
    int64_t offset = 0;
    for (size_t i : group.members) {
      const auto& p = parameters_[i];
      const int64_t n = p.tensor.numel();
      out.emplace_back("exp_avg." + p.name, group.exp_avg.narrow(0, offset, n).view(p.tensor.sizes()));
      out.emplace_back("exp_avg_sq." + p.name,
                       group.exp_avg_sq.narrow(0, offset, n).view(p.tensor.sizes()));
      offset += n;
    }
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, at::Tensor>>& state,
                       int64_t steps) {
  std::map<std::string, at::Tensor> given(state.begin(), state.end());
  const auto expected = this->state();
  std::vector<std::string> problems;
  for (const auto& [name, target] : expected) {
    auto it = given.find(name);
    if (it == given.end()) {
      problems.push_back("missing " + name);
      continue;
    }
    if (it->second.sizes() != target.sizes())
      problems.push_back(name + ": checkpoint " + c10::str(it->second.sizes()) + ", model " +
                         c10::str(target.sizes()));
    given.erase(it);
  }
  for (const auto& [name, tensor] : given) problems.push_back("unexpected " + name);
  if (!problems.empty()) {
    std::string message = "the optimizer state does not fit the model's trainable parameters:";
    for (size_t i = 0; i < problems.size() && i < 10; ++i) message += "\n  " + problems[i];
    if (problems.size() > 10)
      message += "\n  and " + std::to_string(problems.size() - 10) + " more";
    throw OptimizerStateError(message);
  }
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> source(state.begin(), state.end());
  for (const auto& [name, target] : expected) target.copy_(source.at(name));
  steps_ = steps;
}

}  // namespace blocks::train
