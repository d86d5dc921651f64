#include "blocks/sequences/layered.h"

#include <algorithm>
#include <limits>

#include "blocks/linear/linear.h"

namespace blocks {

using config::Node;

// Each override becomes the layer's whole block: the base block with the override merged on.
void merge_overrides(config::Node& node,
                     const std::function<const config::Node*(int64_t)>& base_of) {
  Node* overrides = node.find("overrides");
  if (!overrides || !overrides->is_mapping()) return;
  for (auto& e : overrides->entries) {
    auto layer = config::parse_integer(e.key);
    const Node* base = layer ? base_of(*layer) : nullptr;
    if (!base) continue;  // reported by validation with the layer count
    Node merged = *base;
    config::merge_into(merged, e.value);
    merged.mark = e.value.mark;
    e.value = std::move(merged);
  }
}

// Overrides are partial blocks, merged onto the layer's block before they are parsed.
config::Json partial_blocks_schema() {
  return {{"type", "object"},
          {"propertyNames", {{"pattern", "^[0-9]+$"}}},
          {"additionalProperties", {{"type", "object"}}}};
}


config::Positions LayeredSequence::base_positions(int64_t slot) const {
  config::Positions out;
  const int64_t step = period();
  int64_t next = slot;  // the first layer of the run being made
  auto run_to = [&](int64_t end) {  // layers next, next + step, ... below end
    if (end > next) out.runs.push_back({next, step, (end - next - 1) / step + 1});
  };
  for (const auto& [layer, block] : overrides) {
    if (layer < 0 || layer >= length() || layer % step != slot) continue;
    run_to(layer);
    next = layer + step;
  }
  run_to(length());
  return out;
}

namespace {

// Sums that stop at the largest count instead of wrapping: layer counts only meet a limit.
int64_t saturating(std::optional<int64_t> value) {
  return value.value_or(std::numeric_limits<int64_t>::max());
}

}  // namespace

bool LayeredSequence::keep_first_layers(int64_t layers) {
  // Only where each position is one layer: otherwise "the first N layers" cuts inside one.
  if (layers < 1 || layer_count() != length()) return false;
  if (layers >= length()) return true;
  set_length(layers);
  for (auto it = overrides.begin(); it != overrides.end();)
    it = it->first >= layers ? overrides.erase(it) : std::next(it);
  return true;
}

int64_t LayeredSequence::layer_count() const {
  int64_t total = 0;
  for (const auto& [layer, block] : overrides)
    if (layer >= 0 && layer < length())
      total = saturating(config::add(total, block ? block->layer_count() : 1));
  for (int64_t slot = 0; slot < std::min(period(), length()); ++slot) {
    const Dynamic<BlockConfig>& b = base_block(slot);
    const int64_t each = b ? b->layer_count() : 1;
    total = saturating(config::add(total, saturating(config::multiply(
                                              base_positions(slot).count(), each))));
  }
  return total;
}

config::Positions LayeredSequence::positions_of(const config::Config& child) const {
  for (const auto& [layer, block] : overrides)
    if (block.get() == &child) return config::Positions::one(layer);
  config::Positions out;
  for (int64_t slot = 0; slot < std::min(period(), length()); ++slot) {
    if (base_block(slot).get() != &child) continue;
    auto runs = base_positions(slot).runs;
    out.runs.insert(out.runs.end(), runs.begin(), runs.end());
  }
  return out;
}

bool LayeredSequence::shares_weights(const config::Config& child) const {
  for (const auto& [layer, block] : overrides)
    if (block.get() == &child) return false;
  const auto layers = positions_of(child);
  return !layers.empty() && is_shared(base_name(layers.front()));
}

void LayeredSequence::enter(const config::Config& child, ResolveContext& child_ctx) const {
  if (numbering_)
    child_ctx.layers = std::make_shared<const config::Positions>(positions_of(child));
}

bool LayeredSequence::within_limit(ResolveContext& ctx) const {
  const int64_t layers = layer_count();
  const int64_t limit = ctx.state->max_layers;
  if (length() <= limit && layers <= limit) return true;
  ctx.error(*this, "num_layers",
            std::to_string(std::max(length(), layers)) + " layers are more than the limit of " +
                std::to_string(limit) +
                " (LoadLimits::max_layers; blockc's --max-layers raises it)");
  return false;
}

void LayeredSequence::resolve_layers(ResolveContext& ctx) {
  numbering_ = ctx.number_layers;
  ctx.number_layers = false;
  apply_lr_scale(ctx, lr_scale);
  if (!within_limit(ctx) || !numbering_) return;
  ctx.scope->decoder_length = length();
  // Layer-ranged PEFT targets (and parts that train in full) give some layers settings the
  // others lack: those layers become explicit overrides, so the resolved config states what
  // each layer is.
  std::vector<config::LinearTarget*> ranged;
  for (auto* list : {&ctx.scope->targets, &ctx.scope->full_training})
    for (auto& target : *list)
      if (target.layers) ranged.push_back(&target);
  for (auto* each : ranged) {
    auto& target = *each;
    const auto [first, last_named] = *target.layers;
    const int64_t last = std::min(last_named, length() - 1);
    for (int64_t l = std::max<int64_t>(0, first); l <= last; ++l) {
      if (overrides.count(l) || !base_block(l)) continue;
      const std::string name = base_name(l);
      if (is_shared(name)) {
        // A shared block whose every position is in range is matched as it is.
        bool split = false;
        for (int64_t slot = 0; slot < std::min(period(), length()); ++slot) {
          if (base_name(slot) != name) continue;
          const int64_t last_of_slot = slot + (length() - 1 - slot) / period() * period();
          split = split || slot < first || last_of_slot > last_named;
        }
        if (!split) continue;
        target.reported = true;  // no "matches no linear layer" on top of this
        ctx.state->diagnostics->error(
            target.mark, target.path,
            "target '" + target.name + "' limited to layers " +
                std::to_string(target.layers->first) + "-" + std::to_string(target.layers->second) +
                " would split shared block '" + name + "' (layer " + std::to_string(l) + ")");
        break;
      }
      overrides[l] = base_block(l);
    }
  }
}

void LayeredSequence::validate_overrides(const ResolveContext& ctx) const {
  for (const auto& [layer, block] : overrides) {
    const std::string field = "overrides." + std::to_string(layer);
    const config::Mark& m = block ? block->mark : mark_of("overrides");
    if (layer < 0 || layer >= length()) {
      ctx.state->diagnostics->error(m, ctx.path_of(field),
                                    "override for layer " + std::to_string(layer) +
                                        ", but the sequence has " + std::to_string(length()) +
                                        " layers (0-" + std::to_string(length() - 1) + ")");
    } else if (is_shared(base_name(layer))) {
      ctx.state->diagnostics->error(m, ctx.path_of(field),
                                    "layer " + std::to_string(layer) + " is shared block '" +
                                        base_name(layer) +
                                        "'; shared blocks cannot be overridden per layer");
    }
  }
}

}  // namespace blocks
