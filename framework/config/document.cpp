#include "framework/config/document.h"

#include <algorithm>
#include <filesystem>

#include "framework/config/resolve.h"

namespace blocks::config {

namespace fs = std::filesystem;

const Versioning& language_versions() {
  static const Versioning versions{1, {}};
  return versions;
}

Json Document::dump() const {
  Json out = Json::object();
  out["version"] = version;
  out["model"] = model ? dump_fields(model->type(), *model, true) : Json::object();
  return out;
}

namespace {

std::optional<int64_t> read_version(const Node& doc, Diagnostics& diagnostics,
                                    const Versioning& versions) {
  const Node* v = doc.find("version");
  if (!v) {
    diagnostics.error(doc.mark, "version",
                      "missing required field 'version' (the current version is " +
                          std::to_string(versions.current) + ")");
    return std::nullopt;
  }
  std::optional<int64_t> n;
  if (v->is_scalar() && !v->quoted) n = parse_integer(v->text);
  if (!n) {
    diagnostics.error(v->mark, "version", "expected an integer, found " + v->describe());
    return std::nullopt;
  }
  if (*n < 1 || *n > versions.current) {
    diagnostics.error(v->mark, "version",
                      "unsupported version " + std::to_string(*n) + "; this blocks reads 1 to " +
                          std::to_string(versions.current) +
                          (*n > versions.current ? " (the file is newer than this blocks)" : ""));
    return std::nullopt;
  }
  return n;
}

// Brings a raw document up to the current version, step by step.
bool migrate(Node& doc, int64_t from, Diagnostics& diagnostics, const Versioning& versions) {
  for (int64_t v = from; v < versions.current; ++v) {
    auto step = std::find_if(versions.migrations.begin(), versions.migrations.end(),
                             [v](const Migration& m) { return m.from == v; });
    if (step == versions.migrations.end()) {
      diagnostics.error(doc.mark, "version",
                        "no migration from version " + std::to_string(v) + " to " +
                            std::to_string(v + 1));
      return false;
    }
    step->apply(doc, diagnostics);
  }
  if (Node* version = doc.find("version")) {
    Mark m = version->mark;
    *version = Node::scalar(std::to_string(versions.current), false, m);
  }
  return true;
}

struct Composer {
  const LoadOptions& options;
  const Versioning& versions;
  Diagnostics& diagnostics;
  std::vector<std::string> chain;  // files being composed, for cycle detection

  std::optional<Node> compose(const std::string& path, const Mark& from) {
    std::error_code ec;
    const std::string key = fs::weakly_canonical(path, ec).string();
    if (std::find(chain.begin(), chain.end(), key) != chain.end()) {
      std::vector<std::string> cycle;
      bool in = false;
      for (const auto& c : chain) {
        in = in || c == key;
        if (in) cycle.push_back(fs::path(c).filename().string());
      }
      cycle.push_back(fs::path(key).filename().string());
      diagnostics.error(from, "extends", "include cycle: " + join(cycle, " -> "));
      return std::nullopt;
    }
    auto loaded = load_file(path, diagnostics, options.limits);
    if (!loaded) return std::nullopt;
    Node doc = std::move(*loaded);
    if (doc.is_null()) doc = Node::mapping(Mark{source_name(path), 1, 1});
    if (!doc.is_mapping()) {
      diagnostics.error(doc.mark, "", "expected a mapping with 'version' and 'model', found " +
                                          doc.describe());
      return std::nullopt;
    }
    auto version = read_version(doc, diagnostics, versions);
    if (!version || !migrate(doc, *version, diagnostics, versions)) return std::nullopt;

    const Node* extends = doc.find("extends");
    if (!extends) return doc;
    std::vector<const Node*> bases;
    if (extends->is_sequence()) {
      for (const auto& b : extends->items) bases.push_back(&b);
    } else {
      bases.push_back(extends);
    }
    chain.push_back(key);
    std::optional<Node> merged;
    bool ok = true;
    for (const Node* b : bases) {
      if (!b->is_scalar()) {
        diagnostics.error(b->mark, "extends", "expected a file path, found " + b->describe());
        ok = false;
        continue;
      }
      const fs::path base_path = fs::path(path).parent_path() / b->text;
      auto base = compose(base_path.string(), b->mark);
      if (!base) {
        ok = false;
        continue;
      }
      if (!merged)
        merged = std::move(*base);
      else
        merge_into(*merged, *base);
    }
    chain.pop_back();
    if (!ok) return std::nullopt;
    doc.erase("extends");
    merge_into(*merged, doc);
    return merged;
  }
};

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.' || c == '[') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else if (c != ']') {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

}  // namespace

std::optional<Node> compose_file(const std::string& path, const LoadOptions& options,
                                 Diagnostics& diagnostics) {
  const Versioning& versions = options.versions ? *options.versions : language_versions();
  Composer composer{options, versions, diagnostics, {}};
  auto doc = composer.compose(path, Mark{source_name(path), 1, 1});
  if (!doc) return std::nullopt;
  const size_t before = diagnostics.size();
  for (size_t i = 0; i < options.sets.size(); ++i)
    apply_set(*doc, options.sets[i], static_cast<int>(i + 1), diagnostics);
  if (diagnostics.size() != before) return std::nullopt;
  return doc;
}

void apply_set(Node& document, const std::string& assignment, int index, Diagnostics& diagnostics) {
  auto origin = source_name("<command line>");
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    diagnostics.error({origin, index, 1}, "",
                      "--set expects PATH=VALUE, found '" + assignment + "'");
    return;
  }
  const std::string path = assignment.substr(0, eq);
  Diagnostics value_errors;
  auto value = load_yaml(assignment.substr(eq + 1), "<command line>", value_errors);
  if (!value) {
    for (const auto& d : value_errors.items())
      diagnostics.error({origin, index, static_cast<int>(eq + 1 + d.mark.column)}, path, d.message);
    return;
  }
  // Marks of the value point into the argument: line = which --set, column = offset in it.
  std::function<void(Node&)> shift = [&](Node& n) {
    n.mark = {origin, index, static_cast<int>(eq + n.mark.column + 1)};
    for (auto& i : n.items) shift(i);
    for (auto& e : n.entries) {
      e.key_mark = {origin, index, static_cast<int>(eq + e.key_mark.column + 1)};
      shift(e.value);
    }
  };
  shift(*value);
  const Mark at{origin, index, 1};
  Node* cur = &document;
  const auto parts = split_path(path);
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    if (cur->is_sequence()) {
      auto k = parse_integer(parts[i]);
      if (!k || *k < 0 || static_cast<size_t>(*k) >= cur->items.size()) {
        diagnostics.error(at, path, "no list item '" + parts[i] + "' (the list has " +
                                        std::to_string(cur->items.size()) + " items)");
        return;
      }
      Node& item = cur->items[static_cast<size_t>(*k)];
      if (last) {
        merge_into(item, *value);
        return;
      }
      cur = &item;
      continue;
    }
    if (!cur->is_mapping()) *cur = Node::mapping(at);
    if (last) {
      // Changing a slot's type drops the old type's fields, as merging does.
      if (parts[i] == "type") {
        const Node* old = cur->find("type");
        if (old && value->is_scalar() && old->text != value->text) cur->entries.clear();
      }
      Node* existing = cur->find(parts[i]);
      if (existing && existing->is_mapping() && value->is_mapping())
        merge_into(*existing, *value);
      else
        cur->set(parts[i], *value, at);
      return;
    }
    Node* next = cur->find(parts[i]);
    if (!next) next = &cur->set(parts[i], Node::mapping(at), at);
    cur = next;
  }
}

std::optional<Document> parse_document(const Node& doc, const Registry& registry,
                                       Diagnostics& diagnostics, const Versioning& versions) {
  const size_t before = diagnostics.size();
  Document out;
  if (!doc.is_mapping()) {
    diagnostics.error(doc.mark, "", "expected a mapping with 'version' and 'model', found " +
                                        doc.describe());
    return std::nullopt;
  }
  auto version = read_version(doc, diagnostics, versions);
  if (version) out.version = versions.current;
  for (const auto& e : doc.entries) {
    if (e.key == "version" || e.key == "model" || e.key == "extends") continue;
    std::string message = "unknown top-level field '" + e.key + "'";
    if (auto guess = did_you_mean(e.key, {"version", "model", "extends"}))
      message += "; did you mean '" + *guess + "'?";
    diagnostics.error(e.key_mark, "", message + " (valid: version, extends, model)");
  }
  const Node* model = doc.find("model");
  if (!model) {
    diagnostics.error(doc.mark, "", "missing required field 'model'");
  } else {
    ParseContext ctx(registry, diagnostics);
    ParseContext::Scope scope(ctx, "model");
    out.model = parse_dynamic("model", *model, ctx);
  }
  if (diagnostics.size() != before) return std::nullopt;
  return out;
}

void resolve_document(Document& document, Diagnostics& diagnostics) {
  if (document.model) resolve_tree(*document.model, diagnostics, "model");
}

std::optional<Document> load_document(const std::string& path, const Registry& registry,
                                      Diagnostics& diagnostics, const LoadOptions& options) {
  auto composed = compose_file(path, options, diagnostics);
  if (!composed) return std::nullopt;
  const Versioning& versions = options.versions ? *options.versions : language_versions();
  auto doc = parse_document(*composed, registry, diagnostics, versions);
  if (!doc) return std::nullopt;
  const size_t before = diagnostics.size();
  resolve_document(*doc, diagnostics);
  if (diagnostics.size() != before) return std::nullopt;
  return doc;
}

std::optional<Document> load_document_text(std::string_view text, const std::string& name,
                                           const Registry& registry, Diagnostics& diagnostics,
                                           const LoadOptions& options) {
  auto node = load_yaml(text, name, diagnostics, options.limits);
  if (!node) return std::nullopt;
  const Versioning& versions = options.versions ? *options.versions : language_versions();
  auto version = read_version(*node, diagnostics, versions);
  if (!version || !migrate(*node, *version, diagnostics, versions)) return std::nullopt;
  if (node->find("extends")) {
    diagnostics.error(node->find("extends")->mark, "extends",
                      "'extends' needs a file on disk; load this document with load_document");
    return std::nullopt;
  }
  for (size_t i = 0; i < options.sets.size(); ++i)
    apply_set(*node, options.sets[i], static_cast<int>(i + 1), diagnostics);
  if (!diagnostics.ok()) return std::nullopt;
  auto doc = parse_document(*node, registry, diagnostics, versions);
  if (!doc) return std::nullopt;
  resolve_document(*doc, diagnostics);
  if (!diagnostics.ok()) return std::nullopt;
  return doc;
}

}  // namespace blocks::config
