// A source-marked YAML/JSON tree: what the loaders produce and composition (extends, --set)
// edits, before typed parsing. Every node keeps the Mark of where it was written.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "framework/config/mark.h"

namespace blocks::config {

class Node {
 public:
  enum class Kind : unsigned char { null, scalar, sequence, mapping };
  struct Entry;

  Kind kind = Kind::null;
  bool quoted = false;  // a quoted scalar is always a string, never a number or boolean
  std::string text;     // scalar text
  Mark mark;
  std::vector<Node> items;     // sequence
  std::vector<Entry> entries;  // mapping, in source order

  static Node null(Mark mark = {});
  static Node scalar(std::string text, bool quoted, Mark mark = {});
  static Node sequence(Mark mark = {});
  static Node mapping(Mark mark = {});

  bool is_null() const { return kind == Kind::null; }
  bool is_scalar() const { return kind == Kind::scalar; }
  bool is_sequence() const { return kind == Kind::sequence; }
  bool is_mapping() const { return kind == Kind::mapping; }

  const Node* find(std::string_view key) const;
  Node* find(std::string_view key);
  const Entry* find_entry(std::string_view key) const;
  // Replaces the value of `key`, or appends it.
  Node& set(std::string key, Node value, Mark key_mark = {});
  bool erase(std::string_view key);
  // Node count of this subtree, for expansion limits.
  size_t size() const;
  // "a mapping", "a list", "null", 'text' for a plain scalar, or `the quoted string "text"`:
  // used in error messages.
  std::string describe() const;
};

struct Node::Entry {
  std::string key;
  Mark key_mark;
  Node value;
};

// Deep merge of `over` onto `base` (composition). Mappings merge key by key; anything else
// replaces. Type-aware: when both are mappings with different `type:` values, `over` replaces
// `base` whole, so fields of the old type do not creep into the new one.
void merge_into(Node& base, const Node& over);

}  // namespace blocks::config
