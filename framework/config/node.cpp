#include "framework/config/node.h"

namespace blocks::config {

std::string Mark::where() const {
  if (!file) return "<code>";
  if (line == 0) return *file;  // the file as a whole (it could not be opened)
  return *file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Mark::chain() const {
  std::string out;
  for (const Via* v = via.get(); v; v = v->at.via.get())
    out += (out.empty() ? "" : ", ") + v->how + " " + v->at.where();
  return out;
}

Node Node::null(Mark mark) {
  Node n;
  n.mark = std::move(mark);
  return n;
}

Node Node::scalar(std::string text, bool quoted, Mark mark) {
  Node n;
  n.kind = Kind::scalar;
  n.text = std::move(text);
  n.quoted = quoted;
  n.mark = std::move(mark);
  return n;
}

Node Node::sequence(Mark mark) {
  Node n;
  n.kind = Kind::sequence;
  n.mark = std::move(mark);
  return n;
}

Node Node::mapping(Mark mark) {
  Node n;
  n.kind = Kind::mapping;
  n.mark = std::move(mark);
  return n;
}

const Node::Entry* Node::find_entry(std::string_view key) const {
  for (const auto& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

const Node* Node::find(std::string_view key) const {
  const Entry* e = find_entry(key);
  return e ? &e->value : nullptr;
}

Node* Node::find(std::string_view key) {
  return const_cast<Node*>(static_cast<const Node*>(this)->find(key));
}

Node& Node::set(std::string key, Node value, Mark key_mark) {
  for (auto& e : entries) {
    if (e.key == key) {
      e.value = std::move(value);
      return e.value;
    }
  }
  if (!key_mark.known()) key_mark = value.mark;
  entries.push_back({std::move(key), std::move(key_mark), std::move(value)});
  return entries.back().value;
}

bool Node::erase(std::string_view key) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->key == key) {
      entries.erase(it);
      return true;
    }
  }
  return false;
}

size_t Node::size() const {
  size_t n = 1;
  for (const auto& i : items) n += i.size();
  for (const auto& e : entries) n += 1 + e.value.size();
  return n;
}

std::string Node::describe() const {
  switch (kind) {
    case Kind::null:
      return "null";
    case Kind::sequence:
      return "a list";
    case Kind::mapping:
      return "a mapping";
    case Kind::scalar:
      break;
  }
  std::string shown = text.size() > 40 ? text.substr(0, 37) + "..." : text;
  // Quoting is why "4" is not an integer and "true" not a boolean: say it.
  if (quoted) return "the quoted string \"" + shown + "\"";
  return "'" + shown + "'";
}

namespace {
const std::string* type_of(const Node& n) {
  const Node* t = n.find("type");
  return t && t->is_scalar() ? &t->text : nullptr;
}
}  // namespace

void merge_into(Node& base, const Node& over) {
  if (!base.is_mapping() || !over.is_mapping()) {
    base = over;
    return;
  }
  const std::string* base_type = type_of(base);
  const std::string* over_type = type_of(over);
  if (base_type && over_type && *base_type != *over_type) {
    base = over;
    return;
  }
  for (const auto& e : over.entries) {
    if (Node* existing = base.find(e.key)) {
      merge_into(*existing, e.value);
    } else {
      base.entries.push_back(e);
    }
  }
}

}  // namespace blocks::config
