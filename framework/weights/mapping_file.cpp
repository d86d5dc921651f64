// User mapping files (YAML): parsed with source marks so that every problem of a file is
// reported at once as FILE:LINE:COL with the key's path, as config files are.
#include <limits>

#include "framework/config/config.h"  // before codec.h, which builds on it
#include "framework/config/codec.h"
#include "framework/config/diagnostics.h"
#include "framework/config/load.h"
#include "framework/weights/mapping_rules.h"
#include "framework/weights/name_pattern.h"

namespace blocks::weights {

namespace {

using config::Diagnostics;
using config::Node;

const char* const kRuleKeys =
    "from, to, transpose, split_dim, stack_capture, layer_capture, rotary_permute, head_size, "
    "slice, tied_to";

std::optional<std::string> text(const Node& node, const std::string& path, Diagnostics& d) {
  if (node.is_scalar()) return node.text;
  d.error(node.mark, path, "expected text, found " + node.describe());
  return std::nullopt;
}

std::optional<int64_t> integer(const Node& node, const std::string& path, Diagnostics& d) {
  std::optional<int64_t> n;
  if (node.is_scalar() && !node.quoted) n = config::parse_integer(node.text);
  if (!n) d.error(node.mark, path, "expected an integer, found " + node.describe());
  return n;
}

// A regex capture group number: 0 (none) to what an int holds; 4294967297 was truncated to 1.
std::optional<int> capture(const Node& node, const std::string& path, Diagnostics& d) {
  auto n = integer(node, path, d);
  if (!n) return std::nullopt;
  if (*n >= 0 && *n <= std::numeric_limits<int>::max()) return static_cast<int>(*n);
  d.error(node.mark, path,
          "expected a capture group number from 0 (none) to " +
              std::to_string(std::numeric_limits<int>::max()) + ", found " + std::to_string(*n));
  return std::nullopt;
}

// Each problem as "FILE:LINE:COL: PATH: message", one a line: the CLI says "error:" once
// (it printed "error: FILE:LINE:COL: error: ...").
std::string problems(const Diagnostics& d) {
  std::string out = d.format();
  for (size_t at = 0; (at = out.find(": error: ", at)) != std::string::npos;)
    out.replace(at, 9, ": ");
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void parse_slice(const Node& node, const std::string& path, MappingRule& rule, Diagnostics& d) {
  if (!node.is_mapping()) {
    d.error(node.mark, path, "expected {dim, start, end}, found " + node.describe());
    return;
  }
  rule.slice = true;
  bool has_end = false;
  for (const auto& e : node.entries) {
    const std::string at = path + "." + e.key;
    std::optional<int64_t> v;
    if (e.key == "dim" || e.key == "start" || e.key == "end") v = integer(e.value, at, d);
    if (e.key == "dim") {
      if (v) rule.slice_dim = *v;
    } else if (e.key == "start") {
      if (v) rule.slice_start = *v;
    } else if (e.key == "end") {
      has_end = true;
      if (v) rule.slice_end = *v;
    } else {
      d.error(e.key_mark, at, "unknown key (dim, start, end)");
    }
  }
  if (!has_end) d.error(node.mark, path, "`end` is required");
}

// `true` or `false`, unquoted.
std::optional<bool> boolean(const Node& v, const std::string& here, Diagnostics& d) {
  if (v.is_scalar() && (v.text == "true" || v.text == "false") && !v.quoted) return v.text == "true";
  d.error(v.mark, here, "expected true or false, found " + v.describe());
  return std::nullopt;
}

MappingRule parse_rule(const Node& node, const std::string& path, Diagnostics& d) {
  MappingRule rule;
  if (!node.is_mapping()) {
    d.error(node.mark, path, "a rule is a mapping with `from`, `to`, ...; found " +
                                 node.describe());
    return rule;
  }
  const config::Mark* from_mark = nullptr;
  for (const auto& entry : node.entries) {
    const std::string here = path + "." + entry.key;
    const Node& v = entry.value;
    if (entry.key == "from") {
      if (auto t = text(v, here, d)) rule.from = *t, from_mark = &v.mark;
    } else if (entry.key == "to") {
      if (v.is_sequence()) {
        for (size_t i = 0; i < v.items.size(); ++i)
          if (auto t = text(v.items[i], here + "[" + std::to_string(i) + "]", d))
            rule.to.push_back(*t);
      } else if (auto t = text(v, here, d)) {
        rule.to.push_back(*t);
      }
    } else if (entry.key == "transpose") {
      if (auto b = boolean(v, here, d)) rule.transpose = *b;
    } else if (entry.key == "split_dim") {
      if (auto n = integer(v, here, d)) rule.split_dim = *n;
    } else if (entry.key == "stack_capture") {
      if (auto n = capture(v, here, d)) rule.stack_capture = *n;
    } else if (entry.key == "layer_capture") {
      if (auto n = capture(v, here, d)) rule.layer_capture = *n;
    } else if (entry.key == "head_size") {
      if (auto n = integer(v, here, d)) rule.head_size = *n;
    } else if (entry.key == "rotary_permute") {
      if (v.is_scalar() && v.text == "interleaved_to_half")
        rule.rotary = MappingRule::Rotary::interleaved_to_half;
      else if (v.is_scalar() && v.text == "half_to_interleaved")
        rule.rotary = MappingRule::Rotary::half_to_interleaved;
      else
        d.error(v.mark, here,
                "expected half_to_interleaved or interleaved_to_half, found " + v.describe());
    } else if (entry.key == "slice") {
      parse_slice(v, here, rule, d);
    } else if (entry.key == "tied_to") {
      if (auto t = text(v, here, d)) rule.tied_to = *t;
    } else {
      d.error(entry.key_mark, here, std::string("unknown key (") + kRuleKeys + ")");
    }
  }
  if (!node.find("from")) d.error(node.mark, path, "`from` is required");
  if (rule.rotary != MappingRule::Rotary::none && (rule.head_size <= 0 || rule.head_size % 2))
    d.error(node.mark, path, "rotary_permute needs an even, positive head_size");
  if (from_mark) {
    try {
      NamePattern check(rule.from);
    } catch (const PatternError& e) {
      d.error(*from_mark, path + ".from", e.what());
    }
  }
  return rule;
}

std::optional<LayerRange> parse_layers(const Node& node, const std::string& path,
                                       Diagnostics& d) {
  if (!node.is_mapping()) {
    d.error(node.mark, path, "expected {from, to, offset}, found " + node.describe());
    return std::nullopt;
  }
  LayerRange range;
  for (const auto& e : node.entries) {
    const std::string at = path + "." + e.key;
    if (e.key == "from") {
      if (auto n = integer(e.value, at, d)) range.from = *n;
    } else if (e.key == "to") {
      if (auto n = integer(e.value, at, d)) range.to = *n;
    } else if (e.key == "offset") {
      if (auto n = integer(e.value, at, d)) range.offset = *n;
    } else {
      d.error(e.key_mark, at, "unknown key (from, to, offset)");
    }
  }
  if (!node.find("from") || !node.find("to"))
    d.error(node.mark, path, "`from` and `to` are required");
  return range;
}

}  // namespace

Mapping load_mapping_file(const std::string& path) {
  Diagnostics d;
  auto root = config::load_file(path, d);
  if (!root || !d.ok()) throw MappingError(problems(d));
  Mapping mapping;
  mapping.name = path;
  if (!root->is_mapping() || !root->find("rules") || !root->find("rules")->is_sequence()) {
    d.error(root->mark, "", "expected a mapping with a `rules` list");
    throw MappingError(problems(d));
  }
  for (const auto& entry : root->entries) {
    if (entry.key == "rules") {
      for (size_t i = 0; i < entry.value.items.size(); ++i)
        mapping.rules.push_back(
            parse_rule(entry.value.items[i], "rules[" + std::to_string(i) + "]", d));
    } else if (entry.key == "relevant_module") {
      if (auto t = text(entry.value, entry.key, d)) mapping.relevant_module = *t;
    } else if (entry.key == "layers") {
      mapping.layers = parse_layers(entry.value, entry.key, d);
    } else if (entry.key == "allow_kind_change") {
      if (auto b = boolean(entry.value, entry.key, d)) mapping.allow_kind_change = *b;
    } else {
      d.error(entry.key_mark, entry.key,
              "unknown key (rules, relevant_module, layers, allow_kind_change)");
    }
  }
  if (!d.ok()) throw MappingError(problems(d));
  return mapping;
}

}  // namespace blocks::weights
