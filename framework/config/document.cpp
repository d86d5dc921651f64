#include "framework/config/document.h"

#include <algorithm>

#include "framework/config/compose.h"
#include "framework/config/parameters.h"
#include "framework/config/resolve.h"

namespace blocks::config {

const Versioning& language_versions() {
  static const Versioning versions{1, {}};
  return versions;
}

Json Document::dump() const {
  Json out = Json::object();
  out["version"] = version;
  out["model"] = model ? dump_fields(model->type(), *model, true) : Json::object();
  for (const auto& [name, section] : sections) out[name] = dump_fields(section->type(), *section);
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
      diagnostics.error(
          doc.mark, "version",
          "no migration from version " + std::to_string(v) + " to " + std::to_string(v + 1));
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

// What every loaded file goes through before composition: it must be a mapping (an empty
// file is an empty one) with a supported version, which is then migrated to the current one.
bool prepare(Node& doc, const std::string& name, Diagnostics& diagnostics,
             const Versioning& versions) {
  if (doc.is_null()) doc = Node::mapping(Mark{source_name(name), 1, 1});
  if (!doc.is_mapping()) {
    diagnostics.error(doc.mark, "",
                      "expected a mapping with 'version' and 'model', found " + doc.describe());
    return false;
  }
  auto version = read_version(doc, diagnostics, versions);
  if (!version && !doc.find("version")) {
    // Reported; the rest is read as the current version, so that its errors are reported too.
    doc.set("version", Node::scalar(std::to_string(versions.current), false, doc.mark), doc.mark);
    return true;
  }
  return version && migrate(doc, *version, diagnostics, versions);
}

// Applies the --set overrides; false when any fails.
bool apply_sets(Node& doc, const std::vector<std::string>& sets, Diagnostics& diagnostics) {
  const size_t before = diagnostics.size();
  for (size_t i = 0; i < sets.size(); ++i)
    apply_set(doc, sets[i], static_cast<int>(i + 1), diagnostics);
  return diagnostics.size() == before;
}

// compose_file, except that errors which leave a usable document (duplicate keys) still
// return it, so that parsing can report the file's other problems in the same run.
std::optional<Node> compose_usable(const std::string& path, const LoadOptions& options,
                                   Diagnostics& diagnostics) {
  const Versioning& versions = options.versions ? *options.versions : language_versions();
  ComposeOptions compose{options.limits, [&](Node& doc, const std::string& name, Diagnostics& d) {
                           return prepare(doc, name, d, versions);
                         }};
  auto doc = compose_document(path, compose, diagnostics);
  if (!doc || !apply_sets(*doc, options.sets, diagnostics)) return std::nullopt;
  return doc;
}

}  // namespace

std::optional<Node> compose_file(const std::string& path, const LoadOptions& options,
                                 Diagnostics& diagnostics) {
  const size_t before = diagnostics.size();
  auto doc = compose_usable(path, options, diagnostics);
  if (diagnostics.size() != before) return std::nullopt;
  return doc;
}

std::optional<std::string> check_set(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    return "expects PATH=VALUE, found '" + assignment + "'";
  const std::string path = assignment.substr(0, eq);
  const std::string bad = "'" + path + "' is not a config path (names joined by single dots, " +
                          "list items as [N], e.g. model.decoder.blocks[0].mixer.heads)";
  size_t i = 0;
  auto name = [&] {
    const size_t start = i;
    while (i < path.size() && path[i] != '.' && path[i] != '[' && path[i] != ']') ++i;
    return path.substr(start, i - start);
  };
  for (bool first = true; i < path.size() || first; first = false) {
    if (!first && path[i] == '[') {
      const size_t close = path.find(']', i);
      if (close == std::string::npos || close == i + 1 ||
          path.find_first_not_of("0123456789", i + 1) != close)
        return bad;
      i = close + 1;
      continue;
    }
    if (!first && path[i++] != '.') return bad;
    const std::string part = name();
    if (part.empty()) return bad;
    if (part == "extends")
      return "'" + path + "': --set cannot change `extends`, which is applied before --set; " +
             "write it in the file";
  }
  return std::nullopt;
}

void apply_set(Node& document, const std::string& assignment, int index, Diagnostics& diagnostics) {
  auto origin = source_name("<command line>");
  if (auto problem = check_set(assignment)) {
    diagnostics.error({origin, index, 1}, "", "--set " + *problem);
    return;
  }
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    diagnostics.error({origin, index, 1}, "",
                      "--set expects PATH=VALUE, found '" + assignment + "'");
    return;
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  Diagnostics value_errors;
  // An empty value is null, as `key:` is in YAML (not the empty mapping of an empty file).
  auto value = text.find_first_not_of(" \t") == std::string::npos
                   ? std::optional<Node>(Node::null({origin, index, 1}))
                   : load_yaml(text, "<command line>", value_errors);
  if (!value || !value_errors.ok()) {
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
  Node* cur = &document;
  const auto parts = split_path(path);
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const std::string& part = parts[i].name;
    const Mark at{origin, index, static_cast<int>(parts[i].offset + 1)};  // the part's column
    if (cur->is_sequence()) {
      auto k = parse_integer(part);
      if (!k || *k < 0 || static_cast<size_t>(*k) >= cur->items.size()) {
        diagnostics.error(at, path,
                          "no list item '" + part + "' (the list has " +
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
      if (part == "type") {
        const Node* old = cur->find("type");
        if (old && value->is_scalar() && old->text != value->text) cur->entries.clear();
      }
      Node* existing = cur->find(part);
      if (existing && existing->is_mapping() && value->is_mapping())
        merge_into(*existing, *value);
      else
        cur->set(part, *value, at);
      return;
    }
    Node* next = cur->find(part);
    if (!next) next = &cur->set(part, Node::mapping(at), at);
    cur = next;
  }
}

std::optional<Document> parse_document(const Node& doc, const Registry& registry,
                                       Diagnostics& diagnostics, const Versioning& versions) {
  const size_t before = diagnostics.size();
  Document out;
  if (!doc.is_mapping()) {
    diagnostics.error(doc.mark, "",
                      "expected a mapping with 'version' and 'model', found " + doc.describe());
    return std::nullopt;
  }
  auto version = read_version(doc, diagnostics, versions);
  if (version) out.version = versions.current;
  std::vector<std::string> fields{"version", "extends", "model"};
  for (const auto& section : registry.sections()) fields.push_back(section.name);
  for (const auto& e : doc.entries) {
    if (std::find(fields.begin(), fields.end(), e.key) != fields.end()) continue;
    std::string message = "unknown top-level field '" + e.key + "'";
    if (auto guess = did_you_mean(e.key, fields)) message += "; did you mean '" + *guess + "'?";
    diagnostics.error(e.key_mark, "", message + " (valid: " + join(fields) + ")");
  }
  ParseContext ctx(registry, diagnostics);
  const Node* model = doc.find("model");
  if (!model) {
    diagnostics.error(doc.mark, "", "missing required field 'model'");
  } else {
    ParseContext::Scope scope(ctx, "model");
    out.model = parse_dynamic("model", *model, ctx);
  }
  for (const auto& section : registry.sections()) {
    const Node* node = doc.find(section.name);
    if (!node) continue;
    ParseContext::Scope scope(ctx, section.name);
    if (!node->is_mapping()) {
      ctx.error(node->mark, "expected a mapping, found " + node->describe());
      continue;
    }
    std::unique_ptr<Config> config = section.type->make();
    parse_fields(*section.type, *config, *node, ctx);
    out.sections[section.name] = std::move(config);
  }
  out.registry = &registry;
  if (diagnostics.size() != before && !out.model) return std::nullopt;
  return out;
}

void resolve_document(Document& document, Diagnostics& diagnostics, const LoadLimits& limits) {
  if (!document.model) return;
  const size_t before = diagnostics.size();
  resolve_tree(*document.model, diagnostics, "model", limits);
  const bool model_resolved = diagnostics.size() == before;
  for (auto& [name, section] : document.sections) resolve_tree(*section, diagnostics, name, limits);
  if (!model_resolved) return;
  check_sizes(*document.model, diagnostics);
  if (!document.registry) return;
  for (auto& [name, section] : document.sections) {
    const SectionInfo* info = document.registry->section(name);
    if (info && info->check) info->check(*section, *document.model, diagnostics);
  }
}

std::optional<Document> load_document(const std::string& path, const Registry& registry,
                                      Diagnostics& diagnostics, const LoadOptions& options) {
  const size_t before = diagnostics.size();
  auto composed = compose_usable(path, options, diagnostics);
  if (!composed) return std::nullopt;
  const Versioning& versions = options.versions ? *options.versions : language_versions();
  auto doc = parse_document(*composed, registry, diagnostics, versions);
  if (!doc) return std::nullopt;
  resolve_document(*doc, diagnostics, options.limits);
  if (diagnostics.size() != before) return std::nullopt;
  return doc;
}

std::optional<Document> load_document_text(std::string_view text, const std::string& name,
                                           const Registry& registry, Diagnostics& diagnostics,
                                           const LoadOptions& options) {
  const size_t before = diagnostics.size();
  auto node = load_yaml(text, name, diagnostics, options.limits);
  if (!node) return std::nullopt;
  const Versioning& versions = options.versions ? *options.versions : language_versions();
  if (!prepare(*node, name, diagnostics, versions)) return std::nullopt;
  if (!check_no_extends(*node, diagnostics)) return std::nullopt;
  if (!apply_sets(*node, options.sets, diagnostics)) return std::nullopt;
  auto doc = parse_document(*node, registry, diagnostics, versions);
  if (!doc) return std::nullopt;
  resolve_document(*doc, diagnostics, options.limits);
  if (diagnostics.size() != before) return std::nullopt;
  return doc;
}

}  // namespace blocks::config
