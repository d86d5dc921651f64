#include "blocks/sequences/pattern.h"

#include <set>

#include "blocks/linear/linear.h"

namespace blocks {

using config::Node;

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
  declare_lr_scale(f);
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

void register_pattern_sequence(config::Registry& registry) {
  registry.add<PatternSequenceConfig>();
}

}  // namespace blocks
