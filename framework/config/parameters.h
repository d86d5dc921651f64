// The parameters a resolved config owns, as the builder will create them, and their counts
// for a whole model without allocating anything (70B-class configs count in milliseconds).
// Types report their own parameters from the widths resolution gave them; sequences say how
// many positions each child stands for (the `Layout` interface).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config/checked.h"
#include "framework/config/config.h"

namespace blocks::config {

struct ParameterShape {
  std::string name;  // relative to its config: "weight", "bias", "lora_a", "conv.bias"
  std::vector<int64_t> shape;
  double lr_scale = 1.0;  // effective: the product along the path
  bool trainable = true;
  std::string role = "base";  // base, lora_a or lora_b

  // The product of `shape`; SizeOverflow past kCountLimit.
  int64_t numel() const;
};

// The positions of a sequence that one child stands for, as runs rather than one by one, so
// that counting a repeat of 10^12 layers costs one run, not 10^12 entries.
struct Positions {
  struct Run {
    int64_t first = 0;  // first, first + step, ..., count of them
    int64_t step = 1;
    int64_t count = 0;
    int64_t last() const { return first + (count - 1) * step; }
  };
  std::vector<Run> runs;  // non-empty runs, disjoint

  static Positions one(int64_t position) { return {{{position, 1, 1}}}; }
  int64_t count() const;
  bool empty() const { return runs.empty(); }
  int64_t front() const;  // the smallest; empty() must be false
  int64_t back() const;   // the largest
  // Every position, ascending: for drawings, which show each layer (bounded by max_layers).
  std::vector<int64_t> list() const;
};

// Configs that place their children at several positions (sequences): how many copies of a
// child's parameters exist.
class Layout {
 public:
  virtual ~Layout() = default;
  // Positions of this sequence that `child` stands for (0-based).
  virtual Positions positions_of(const Config& child) const = 0;
  // Whether every position of `child` uses one set of weights.
  virtual bool shares_weights(const Config& child) const = 0;
  // The name the block at `position` goes by before per-layer changes (a pattern's letter),
  // or "" where blocks have no names; diagrams label layers with it.
  virtual std::string name_at(int64_t /*position*/) const { return {}; }
};

struct ParameterCount {
  int64_t total = 0;
  int64_t trainable = 0;
  int64_t tensors = 0;
};

// 2 x the elements of every matrix (rank >= 2) in `parameters`: Config::forward_flops's rule.
double matrix_flops(const std::vector<ParameterShape>& parameters);

// Forward FLOPs per token of everything at or below `root`: each config's forward_flops once
// per position it runs at. Unlike count_parameters, a block shared across positions counts at
// every position: its weights exist once but it computes each time. `visit`, when given, sees
// each config with the positions it runs at and its own FLOPs (once).
double count_forward_flops(const Config& root, const FlopContext& context,
                           const std::function<void(const Config&, const std::string& path,
                                                    int64_t runs, double flops)>& visit = {});

// Every parameter at or below `root`, each counted once per position its config stands for
// (once for shared blocks). `visit`, when given, sees each config with its multiplicity.
// Both throw SizeOverflow, naming the config path and parameter, when a count passes kCountLimit.
ParameterCount count_parameters(
    const Config& root,
    const std::function<void(const Config&, const std::string& path, int64_t copies)>& visit = {});

// Reports, at the config where it happens, a model whose parameter count or bytes (8 per
// parameter, the widest dtype) pass kCountLimit or whose FLOPs are not finite: what summary and
// diagrams print is then always a true count. Resolution runs it last.
void check_sizes(const Config& root, Diagnostics& diagnostics,
                 const FlopContext& context = FlopContext{});

}  // namespace blocks::config
