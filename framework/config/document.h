// A config file as a whole: `version`, optional `extends` (base files deep-merged below it,
// and at any node below: compose.h), and the `model`. Loading composes the files, applies --set
// overrides, migrates old versions, parses against the registry and resolves, collecting every
// error on the way.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/load.h"

namespace blocks::config {

// One step of the config language's history: rewrites a raw document of version `from` into
// version `from + 1` (renamed keys, moved fields).
struct Migration {
  int64_t from = 0;
  std::string summary;
  std::function<void(Node& document, Diagnostics&)> apply;
};

struct Versioning {
  int64_t current = 1;
  std::vector<Migration> migrations;  // one per version step below `current`
};
// The language's own history. Version 1 is the first; a change that breaks files adds a step.
const Versioning& language_versions();

struct LoadOptions {
  std::vector<std::string> sets;  // "dotted.path=value" overrides, applied after composition
  LoadLimits limits;
  const Versioning* versions = nullptr;  // null: language_versions()
};

struct Document {
  int64_t version = 1;
  std::unique_ptr<Config> model;  // kind "model"
  // The registry's sections the file has (Registry::add_section), by name: `train` of a run.
  std::map<std::string, std::unique_ptr<Config>> sections;
  const Registry* registry = nullptr;  // the one it was parsed against (sections' checks)

  // The section `name` as its type, or null when the file has none.
  template <class T>
  const T* section(const std::string& name) const {
    auto it = sections.find(name);
    return it == sections.end() ? nullptr : dynamic_cast<const T*>(it->second.get());
  }
  Json dump() const;  // {"version": N, "model": {...}, sections...}
};

// Reads `path` and its bases and applies `options.sets`. Null on errors.
std::optional<Node> compose_file(const std::string& path, const LoadOptions& options,
                                 Diagnostics& diagnostics);
// What is wrong with the form of a --set assignment: PATH=VALUE, PATH made of non-empty names
// and [N] items, not touching `extends` (composition is over when --set applies); nullopt when
// it is well formed. `model..hidden_size` and `model.` were quietly normalised before.
std::optional<std::string> check_set(const std::string& assignment);
// Applies one "dotted.path=value" override; `index` numbers it in marks ("<command line>:N:COL").
void apply_set(Node& document, const std::string& assignment, int index, Diagnostics& diagnostics);
// Parses a composed document against `registry` (no resolution). The document comes back
// whenever a model could be made, errors or not, so that resolution can still check the parts
// that parsed: every error of a file is reported in one run. Check `diagnostics`.
std::optional<Document> parse_document(const Node& document, const Registry& registry,
                                       Diagnostics& diagnostics,
                                       const Versioning& versions = language_versions());
// compose_file + parse_document + resolve_tree. Null when anything is wrong. Problems that
// leave a usable document (duplicate keys, a bad field) do not stop the later steps from
// reporting theirs: parse errors and the rule violations of the parts that parsed come together.
std::optional<Document> load_document(const std::string& path, const Registry& registry,
                                      Diagnostics& diagnostics, const LoadOptions& options = {});
// The same, from text already in memory (no `extends`, which needs a file).
std::optional<Document> load_document_text(std::string_view text, const std::string& name,
                                           const Registry& registry, Diagnostics& diagnostics,
                                           const LoadOptions& options = {});
// Resolves a parsed document in place, then checks that its sizes can be counted (check_sizes).
void resolve_document(Document& document, Diagnostics& diagnostics, const LoadLimits& limits = {});

}  // namespace blocks::config
