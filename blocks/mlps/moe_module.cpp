// The module of `moe` (moe.h): top-k routing as Hugging Face's MixtralSparseMoeBlock, DeepSeekMoE's
// shared experts, the Switch load-balancing loss (Fedus et al. 2021) and the ST-MoE router z-loss
// (Zoph et al. 2022).
#include <vector>

#include "blocks/linear/affine.h"
#include "blocks/linear/linear_module.h"
#include "blocks/mlps/activation_module.h"
#include "blocks/mlps/moe.h"
#include "blocks/modules.h"

namespace blocks {

namespace {

// The token-slots (token, k) sorted by expert: expert 0 owns the first sizes[0] slots, expert 1
// the next sizes[1], and so on.
struct Dispatch {
  at::Tensor tokens;           // int64 [N * top_k]: the token of each slot
  at::Tensor weights;          // [N * top_k]: its routing weight, in the input dtype
  at::Tensor counts;           // int64 [experts], on the input's device (for the aux loss)
  std::vector<int64_t> sizes;  // counts on the host, to slice per expert
};

class Moe : public MlpModule {
 public:
  Moe(const MoeConfig& c, Builder& b, const std::string& path)
      : experts_(c.experts),
        top_k_(c.top_k),
        hidden_(c.router.in_features),
        activation_(activation_from_name(c.activation)),
        normalize_top_k_(c.normalize_top_k),
        aux_loss_coefficient_(c.aux_loss_coefficient),
        z_loss_coefficient_(c.z_loss_coefficient),
        jitter_(c.jitter),
        path_(path) {
    auto linear = [&](const char* name, const LinearConfig& config) {
      return register_module(name, b.build_as<Linear>(config, child_path(c, path, config)));
    };
    router_ = linear("router", c.router);
    // Without gating the config gives `gate` no parameters, so there is no module to build.
    if (c.gated) gate_ = linear("gate", c.gate);
    up_ = linear("up", c.up);
    down_ = linear("down", c.down);
    if (c.shared_experts > 0) {
      if (c.gated) shared_gate_ = linear("shared_gate", *c.shared_gate);
      shared_up_ = linear("shared_up", *c.shared_up);
      shared_down_ = linear("shared_down", *c.shared_down);
    }
  }

  // Sub-LN (`inner()`) is not applied: validation rejects it for MoE, which has no single inner
  // width. Auxiliary losses are pushed in evaluation too, so callers can log them.
  at::Tensor forward(const at::Tensor& x, Step& step) override {
    check_input(x);
    const at::Tensor tokens = x.reshape({-1, hidden_});
    const at::Tensor logits = router_->forward(router_input(tokens));
    const at::Tensor probs = at::softmax(logits.to(at::kFloat), -1);
    auto [weights, chosen] = probs.topk(top_k_, -1);
    if (normalize_top_k_) weights = weights / weights.sum(-1, /*keepdim=*/true);
    const Dispatch dispatch = sort_by_expert(weights.to(x.scalar_type()), chosen);
    at::Tensor out = run_experts(tokens, dispatch);
    if (shared_up_) out = out + shared(tokens);
    add_losses(logits, probs, dispatch.counts, step);
    return out.reshape(x.sizes());
  }

 private:
  void check_input(const at::Tensor& x) const {
    if (x.dim() != 3 || x.size(2) != hidden_)
      throw InputError(path_, "expected inputs [batch, tokens, " + std::to_string(hidden_) +
                                  "], got shape " + c10::str(x.sizes()));
  }

  // Switch's multiplicative jitter: the router sees noisy inputs in training, the experts not.
  at::Tensor router_input(const at::Tensor& tokens) const {
    if (!is_training() || jitter_ <= 0) return tokens;
    return tokens * at::empty_like(tokens).uniform_(1.0 - jitter_, 1.0 + jitter_);
  }

  // Sorts the N * top_k token-slots by expert so each expert reads its tokens in one gather.
  Dispatch sort_by_expert(const at::Tensor& weights, const at::Tensor& chosen) const {
    const at::Tensor flat = chosen.reshape(-1);
    const at::Tensor order = flat.argsort();
    Dispatch d;
    d.tokens = order.div(top_k_, "floor");  // slot s belongs to token s / top_k
    d.weights = weights.reshape(-1).index_select(0, order);
    d.counts = at::bincount(flat, /*weights=*/{}, experts_);
    const at::Tensor host = d.counts.to(at::kCPU);  // one sync: slice sizes are host values
    d.sizes.assign(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + experts_);
    return d;
  }

  // Each expert with tokens runs once on its tokens; experts without tokens cost nothing.
  at::Tensor run_experts(const at::Tensor& tokens, const Dispatch& d) const {
    at::Tensor out = at::zeros_like(tokens);
    int64_t offset = 0;
    for (int64_t e = 0; e < experts_; ++e) {
      const int64_t count = d.sizes[e];
      if (count == 0) continue;
      const at::Tensor rows = d.tokens.narrow(0, offset, count);
      const at::Tensor y = expert(e, tokens.index_select(0, rows));
      out.index_add_(0, rows, y * d.weights.narrow(0, offset, count).unsqueeze(1));
      offset += count;
    }
    return out;
  }

  at::Tensor expert(int64_t e, const at::Tensor& h) const {
    if (!gate_) return project(*down_, e, activate(activation_, project(*up_, e, h)));
    return project(*down_, e, activate(activation_, project(*gate_, e, h)) * project(*up_, e, h));
  }

  // Expert e's slice of a stacked linear ([experts, out, in]), with its LoRA adapters
  // (lora_a [experts, r, in], lora_b [experts, out, r]) when PEFT targets the experts.
  at::Tensor project(const Linear& linear, int64_t e, const at::Tensor& h) const {
    const at::Tensor bias = linear.bias.defined() ? linear.bias[e] : at::Tensor();
    at::Tensor y = affine(h, linear.weight[e], bias);
    if (linear.has_adapters()) {
      const at::Tensor a = blocks::dropout(h, linear.lora_dropout, linear.is_training());
      y = y + affine(affine(a, linear.lora_a[e]), linear.lora_b[e]) * linear.lora_scale;
    }
    return y;
  }

  // The shared experts: one MLP of their summed width on every token, gated like the experts.
  at::Tensor shared(const at::Tensor& h) const {
    const at::Tensor a =
        activate(activation_, (shared_gate_ ? shared_gate_ : shared_up_)->forward(h));
    return shared_down_->forward(shared_gate_ ? a * shared_up_->forward(h) : a);
  }

  // Load balance (Switch): coefficient * E * sum_e f_e P_e, with f_e the fraction of
  // token-slots sent to expert e and P_e its mean router probability; 1 when routing is
  // uniform. (Hugging Face's load_balancing_loss_func counts f_e per token, which is top_k
  // times this.) Router z-loss (ST-MoE): coefficient * mean(logsumexp(logits)^2), in float32.
  void add_losses(const at::Tensor& logits, const at::Tensor& probs, const at::Tensor& counts,
                  Step& step) const {
    const int64_t n = probs.size(0);
    if (n == 0) return;  // no tokens, no statistics (the means would be NaN)
    if (aux_loss_coefficient_ > 0) {
      const at::Tensor fraction = counts.to(at::kFloat) / static_cast<double>(n * top_k_);
      const at::Tensor balance = (fraction * probs.mean(0)).sum();
      step.aux_losses.push_back(balance * (aux_loss_coefficient_ * static_cast<double>(experts_)));
    }
    if (z_loss_coefficient_ > 0) {
      const at::Tensor z = logits.to(at::kFloat).logsumexp(-1).square().mean();
      step.aux_losses.push_back(z * z_loss_coefficient_);
    }
  }

  int64_t experts_, top_k_, hidden_;
  Activation activation_;
  bool normalize_top_k_;
  double aux_loss_coefficient_, z_loss_coefficient_, jitter_;
  std::string path_;
  std::shared_ptr<Linear> router_, gate_, up_, down_, shared_gate_, shared_up_, shared_down_;
};

}  // namespace

void register_modules_moe(nn::ModuleRegistry& modules) {
  modules.add<MoeConfig>([](const MoeConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<Moe>(c, b, path);
  });
}

}  // namespace blocks
