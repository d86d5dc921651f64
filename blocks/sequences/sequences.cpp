#include "blocks/sequences/sequences.h"

#include <algorithm>
#include <set>

#include "blocks/linear/linear.h"

namespace blocks {

using config::Node;

namespace {

// Each override becomes the layer's whole block: the base block with the override merged on.
void merge_overrides(Node& node, const std::function<const Node*(int64_t)>& base_of) {
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

std::shared_ptr<const std::vector<int64_t>> single(int64_t layer) {
  return std::make_shared<const std::vector<int64_t>>(1, layer);
}

}  // namespace

int64_t LayeredSequence::layer_count() const {
  int64_t total = 0;
  for (int64_t l = 0; l < length(); ++l) {
    auto it = overrides.find(l);
    const Dynamic<BlockConfig>& b = it != overrides.end() ? it->second : base_block(l);
    total += b ? b->layer_count() : 1;
  }
  return total;
}

void LayeredSequence::enter(const config::Config& child, ResolveContext& child_ctx) const {
  if (!numbering_) return;
  for (const auto& [layer, block] : overrides) {
    if (block.get() == &child) {
      child_ctx.layers = single(layer);
      return;
    }
  }
  auto layers = std::make_shared<std::vector<int64_t>>();
  for (int64_t l = 0; l < length(); ++l)
    if (!overrides.count(l) && base_block(l).get() == &child) layers->push_back(l);
  child_ctx.layers = std::move(layers);
}

void LayeredSequence::resolve_layers(ResolveContext& ctx) {
  numbering_ = ctx.number_layers;
  ctx.number_layers = false;
  apply_lr_scale(ctx, lr_scale);
  if (!numbering_) return;
  ctx.state->decoder_length = length();
  // Layer-ranged PEFT targets give some layers settings the others lack: those layers become
  // explicit overrides, so the resolved config states what each layer is.
  for (auto& target : ctx.state->targets) {
    if (!target.layers) continue;
    const auto [first, last_named] = *target.layers;
    const int64_t last = std::min(last_named, length() - 1);
    for (int64_t l = std::max<int64_t>(0, first); l <= last; ++l) {
      if (overrides.count(l) || !base_block(l)) continue;
      const std::string name = base_name(l);
      if (is_shared(name)) {
        // A shared block whose every position is in range is matched as it is.
        bool split = false;
        for (int64_t p = 0; p < length(); ++p)
          split = split || (base_name(p) == name && (p < first || p > last_named));
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

// --- fixed ---

void FixedSequenceConfig::declare(Fields<FixedSequenceConfig>& f) {
  f.add("blocks", &FixedSequenceConfig::blocks, "The blocks, in order.").required();
  f.add("lr_scale", &FixedSequenceConfig::lr_scale, "Learning-rate multiplier; 0 freezes.",
        Hint::optional)
      .min(0);
}

void FixedSequenceConfig::resolve(ResolveContext& ctx) {
  numbering_ = ctx.number_layers;
  ctx.number_layers = false;
  if (numbering_) ctx.state->decoder_length = static_cast<int64_t>(blocks.size());
  apply_lr_scale(ctx, lr_scale);
}

void FixedSequenceConfig::validate(const ResolveContext& ctx) const {
  if (blocks.empty()) ctx.error(*this, "blocks", "needs at least one block");
}

int64_t FixedSequenceConfig::layer_count() const {
  int64_t total = 0;
  for (const auto& b : blocks) total += b ? b->layer_count() : 1;
  return total;
}

void FixedSequenceConfig::enter(const config::Config& child, ResolveContext& child_ctx) const {
  if (!numbering_) return;
  for (size_t i = 0; i < blocks.size(); ++i)
    if (blocks[i].get() == &child) child_ctx.layers = single(static_cast<int64_t>(i));
}

// --- repeat ---

void RepeatSequenceConfig::declare(Fields<RepeatSequenceConfig>& f) {
  f.add("block", &RepeatSequenceConfig::block, "The block to repeat (may be a sequence).")
      .required();
  f.add("num_layers", &RepeatSequenceConfig::num_layers, "Number of repetitions.")
      .required()
      .min(1);
  f.add("overrides", &RepeatSequenceConfig::overrides,
        "Per-layer changes, by layer index, merged onto `block` for that layer only.")
      .schema_as(partial_blocks_schema());
  f.add("lr_scale", &RepeatSequenceConfig::lr_scale, "Learning-rate multiplier; 0 freezes.",
        Hint::optional)
      .min(0);
}

void RepeatSequenceConfig::preprocess(Node& node, config::ParseContext&) {
  const Node* block = node.find("block");
  if (!block) return;
  const Node base = *block;
  merge_overrides(node, [&](int64_t) { return &base; });
}

void RepeatSequenceConfig::resolve(ResolveContext& ctx) { resolve_layers(ctx); }

void RepeatSequenceConfig::validate(const ResolveContext& ctx) const { validate_overrides(ctx); }

// --- pattern ---

void PatternSequenceConfig::declare(Fields<PatternSequenceConfig>& f) {
  f.add("blocks", &PatternSequenceConfig::blocks, "The named blocks the pattern uses.").required();
  f.add("pattern", &PatternSequenceConfig::pattern,
        "Block names in order, or a string whose letters are one-letter block names.")
      .required()
      .schema_also({{"type", "string"}, {"minLength", 1}});
  f.add("num_layers", &PatternSequenceConfig::num_layers,
        "Total layers: the pattern repeats to fill them; default: the pattern's length.")
      .min(1);
  f.add("shared", &PatternSequenceConfig::shared,
        "Names of blocks whose positions all use one set of weights.");
  f.add("overrides", &PatternSequenceConfig::overrides,
        "Per-layer changes, by layer index, merged onto that layer's named block.")
      .schema_as(partial_blocks_schema());
  f.add("lr_scale", &PatternSequenceConfig::lr_scale, "Learning-rate multiplier; 0 freezes.",
        Hint::optional)
      .min(0);
}

void PatternSequenceConfig::preprocess(Node& node, config::ParseContext&) {
  Node* pattern = node.find("pattern");
  if (pattern && pattern->is_scalar()) {
    // "M*M*": each letter names a block; marks point at the letter.
    Node list = Node::sequence(pattern->mark);
    for (size_t i = 0; i < pattern->text.size(); ++i) {
      config::Mark m = pattern->mark;
      m.column += static_cast<int>(i) + (pattern->quoted ? 1 : 0);
      list.items.push_back(Node::scalar(std::string(1, pattern->text[i]), true, m));
    }
    *pattern = std::move(list);
  }
  const Node* blocks = node.find("blocks");
  if (!pattern || !pattern->is_sequence() || pattern->items.empty() || !blocks) return;
  const Node names = *pattern;
  const Node named = *blocks;
  merge_overrides(node, [&](int64_t layer) -> const Node* {
    if (layer < 0) return nullptr;
    const Node& name = names.items[static_cast<size_t>(layer) % names.items.size()];
    return name.is_scalar() ? named.find(name.text) : nullptr;
  });
}

int64_t PatternSequenceConfig::length() const {
  return num_layers.value_or(static_cast<int64_t>(pattern.size()));
}

std::string PatternSequenceConfig::base_name(int64_t layer) const {
  if (pattern.empty() || layer < 0) return {};
  return pattern[static_cast<size_t>(layer) % pattern.size()];
}

const Dynamic<BlockConfig>& PatternSequenceConfig::base_block(int64_t layer) const {
  static const Dynamic<BlockConfig> none;
  auto it = blocks.find(base_name(layer));
  return it == blocks.end() ? none : it->second;
}

bool PatternSequenceConfig::is_shared(const std::string& name) const {
  return std::find(shared.begin(), shared.end(), name) != shared.end();
}

void PatternSequenceConfig::resolve(ResolveContext& ctx) {
  set_default(num_layers, static_cast<int64_t>(pattern.size()));
  resolve_layers(ctx);
}

void PatternSequenceConfig::validate(const ResolveContext& ctx) const {
  std::vector<std::string> names;
  for (const auto& [name, block] : blocks) names.push_back(name);
  auto unknown = [&](const std::string& name, const std::string& field) {
    std::string message = "unknown block name '" + name + "'";
    if (auto guess = config::did_you_mean(name, names))
      message += "; did you mean '" + *guess + "'?";
    ctx.state->diagnostics->error(mark_of(field), ctx.path_of(field),
                                  message + " (blocks: " + config::join(names) + ")");
  };
  if (pattern.empty()) ctx.error(*this, "pattern", "must name at least one block");
  std::set<std::string> used;
  for (size_t i = 0; i < pattern.size(); ++i) {
    used.insert(pattern[i]);
    if (!blocks.count(pattern[i])) unknown(pattern[i], "pattern[" + std::to_string(i) + "]");
  }
  for (size_t i = 0; i < shared.size(); ++i)
    if (!blocks.count(shared[i])) unknown(shared[i], "shared[" + std::to_string(i) + "]");
  for (const auto& name : names)
    if (!used.count(name))
      ctx.state->diagnostics->error(blocks.at(name) ? blocks.at(name)->mark : mark_of("blocks"),
                                    ctx.path_of("blocks." + name),
                                    "block '" + name + "' is not used by the pattern");
  if (num_layers && !pattern.empty() && *num_layers % static_cast<int64_t>(pattern.size()) != 0)
    ctx.error(*this, "num_layers",
              "must be a multiple of the pattern's length (" + std::to_string(pattern.size()) +
                  "), found " + std::to_string(*num_layers));
  validate_overrides(ctx);
}

void register_sequences(config::Registry& registry) {
  registry.add<FixedSequenceConfig>();
  registry.add<RepeatSequenceConfig>();
  registry.add<PatternSequenceConfig>();
}

}  // namespace blocks
