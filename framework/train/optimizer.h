// AdamW over a model's parameter table, as torch.optim.AdamW steps (PyTorch's
// _single_tensor_adamw: decoupled decay, then the moments, then the bias-corrected update).
// Trainable parameters (trainable, lr scale > 0) are grouped by (lr scale, decays); each group's
// parameters, gradients and moments live in flat buffers of which the parameters and their
// .grad() are views, so backward accumulates into one buffer per group, and zeroing, the
// gradient norm, clipping, the all-reduce of data parallelism and the update are one pass over
// a few large buffers instead of a few ops per tensor. Frozen parameters get
// requires_grad(false) and no state.
//
//   train::AdamW optimizer(model.parameters, run.optimizer);
//   optimizer.zero_grad();  ... loss.backward();
//   const double norm = optimizer.clip_grad_norm(1.0);
//   optimizer.step(lr);
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "blocks/train/train.h"
#include "framework/config/error.h"
#include "framework/nn/builder.h"

namespace blocks::train {

// An optimizer state that does not fit the model (other names or shapes).
class OptimizerStateError : public Error {
 public:
  using Error::Error;
};

class AdamW {
 public:
  struct Parameter {
    std::string name;
    at::Tensor tensor;  // the model's parameter (a view of its group's buffer)
    bool decays = false;
  };
  struct Group {
    double lr_scale = 1.0;
    double weight_decay = 0.0;
    std::vector<size_t> members;  // indices into parameters()
    at::Tensor values, grads, exp_avg, exp_avg_sq;  // flat, in members' order
  };

  // Takes the trainable parameters of `table` once each (a tied or shared tensor appears once,
  // under its first name); a `no_decay` pattern that does not compile throws
  // weights::PatternError.
  AdamW(const nn::ParameterTable& table, const AdamWConfig& config);

  void zero_grad();
  // The global L2 norm of the gradients; when above `max_norm` (> 0) the gradients are scaled
  // by max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_ does.
  double clip_grad_norm(double max_norm);
  // Whether every gradient is finite.
  bool gradients_finite() const;
  // One update at peak-relative rate `lr` (each group at lr x its lr scale).
  void step(double lr);

  int64_t steps() const { return steps_; }
  const std::vector<Parameter>& parameters() const { return parameters_; }
  const std::vector<Group>& groups() const { return groups_; }
  int64_t trainable_numel() const;
  // The moments by parameter name ("exp_avg.NAME", "exp_avg_sq.NAME"), views of the buffers.
  std::vector<std::pair<std::string, at::Tensor>> state() const;
  // Restores state() (copying) and the step count; throws OptimizerStateError listing missing,
  // unexpected and mis-shaped entries.
  void load_state(const std::vector<std::pair<std::string, at::Tensor>>& state, int64_t steps);

 private:
  void flatten(Group& group);
  std::vector<Parameter> parameters_;
  std::vector<Group> groups_;
  AdamWConfig config_;
  int64_t steps_ = 0;
};

}  // namespace blocks::train
