// Composition of config files by `extends:`, at the top of a file or at any node in it.
//
//   version: 1
//   extends: base.yaml                  # the whole file: deep-merged below this one
//   model:
//     decoder: {extends: "llama3-8b.yaml#model.decoder", num_layers: 2}
//
// A node that says `extends: FILE#PATH` takes the mapping at PATH inside the whole config
// FILE (composed itself first), deep-merged below the node's own keys (type-aware, as
// `merge_into`). `extends: FILE` at a node below the top takes FILE's root mapping (a fragment
// without `version`). A list of bases merges in order. Paths are relative to the file that
// says `extends`. Values from a base keep their marks, which name the chain of files that
// mounted them (Mark::via).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "framework/config/diagnostics.h"
#include "framework/config/load.h"
#include "framework/config/node.h"

namespace blocks::config {

struct ComposeOptions {
  LoadLimits limits;
  // Checks and migrates a whole config file after reading it (its `version`), reporting to
  // the given diagnostics; false when the file cannot be used. Fragments (mounted whole below
  // the top) have no version.
  std::function<bool(Node& document, const std::string& path, Diagnostics&)> prepare;
};

// Reads the config file `path` and every file it mounts; null on errors that leave no
// usable document (a missing base, a cycle, a bad PATH).
std::optional<Node> compose_document(const std::string& path, const ComposeOptions& options,
                                     Diagnostics& diagnostics);

// Reports each `extends` in a document held in memory, which has no file to resolve it
// against; false when there is one.
bool check_no_extends(const Node& document, Diagnostics& diagnostics);

// One step of a dotted config path ("model.decoder.blocks[1]"), and where it starts in the
// text (0-based): used by --set and by `extends: FILE#PATH`.
struct PathPart {
  std::string name;
  size_t offset = 0;
};
std::vector<PathPart> split_path(const std::string& path);

}  // namespace blocks::config
