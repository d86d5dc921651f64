// What the `repeat` and `pattern` sequences share: a layer index, per-layer overrides merged
// onto a layer's block while parsing, and the numbering of decoder layers (which the model's
// decoder does, for layer-ranged PEFT targets).
#pragma once

#include <functional>
#include <map>
#include <memory>

#include "blocks/kinds.h"

namespace blocks {

// What repeat and pattern share: per-layer overrides and layer numbering.
struct LayeredSequence : SequenceConfig, config::ChildContexts, config::Layout {
  std::map<int64_t, Dynamic<BlockConfig>> overrides;
  double lr_scale = 1.0;

  virtual int64_t length() const = 0;
  virtual void set_length(int64_t layers) = 0;
  // Layers repeat their base block every period() layers: 1 for repeat, the pattern's length.
  virtual int64_t period() const = 0;
  // The block at `layer` before overrides, and the name it goes by ("" for repeat).
  virtual const Dynamic<BlockConfig>& base_block(int64_t layer) const = 0;
  virtual std::string base_name(int64_t layer) const = 0;
  virtual bool is_shared(const std::string& name) const = 0;

  int64_t layer_count() const override;
  // Sets the length to `layers` and drops the overrides past it.
  bool keep_first_layers(int64_t layers) override;
  void enter(const config::Config& child, ResolveContext& child_ctx) const override;
  config::Positions positions_of(const config::Config& child) const override;
  bool shares_weights(const config::Config& child) const override;
  std::string name_at(int64_t position) const override { return base_name(position); }

 protected:
  // The layers at `slot` + k * period() without an override, in runs between overrides: a
  // repeat of N identical layers costs one run, whatever N is.
  config::Positions base_positions(int64_t slot) const;
  void resolve_layers(ResolveContext& ctx);
  // False, with an error at num_layers, past LoadLimits::max_layers.
  bool within_limit(ResolveContext& ctx) const;
  void validate_overrides(const ResolveContext& ctx) const;
  bool numbering_ = false;
};

// Replaces each entry of the raw `overrides` mapping by the layer's base block (from
// `base_of`) with the entry merged on: an override is the layer's whole block.
void merge_overrides(config::Node& node,
                     const std::function<const config::Node*(int64_t)>& base_of);
// The schema of `overrides`: partial blocks by layer index.
config::Json partial_blocks_schema();

}  // namespace blocks
