// The architecture graph of a resolved config (DESIGN: graph layer, no LibTorch): nodes for the
// model, sequences, blocks, sub-layers and parameters, edges for data flow with residual paths.
// Built from the declarations alone: a config is a node when it holds parameters or is a
// model, sequence or block; its key hyperparameters are its architecture fields; sequences say
// where each child occurs (config::Layout), and types may describe their flow (config::flow).
// Repeated blocks collapse to one node marked with its layers, so the drawing has the same
// size for 12 layers or 80. Where the distinct blocks of a sequence do not follow one another
// in runs (a pattern such as mMmMaMmM), they are not chained, since an arrow would read as
// the layer order: a `layer order` node lists which block each layer is, and points at them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config/config.h"

namespace blocks::graph {

// `order`: the layer order of a sequence whose blocks are not drawn as a chain; its details
// are the lines of that list ("0 m · 1 M · 2 m · 3 M", "×4: layers 0-31").
enum class NodeKind { model, sequence, block, layer, input, sum, order };

struct Node {
  int id = 0;
  NodeKind kind = NodeKind::layer;
  int parent = -1;
  std::string path;                  // config path, e.g. model.decoder.block.mixer
  std::string title;                 // "mixer: attention", "query", "decoder: repeat"
  std::string category;              // its kind ("mixer"), or its type for nested structs"
  std::vector<std::string> details;  // key hyperparameters, "heads 32", "rotary llama3"
  int64_t parameters = 0;            // of one copy, everything below included
  int64_t copies = 1;                // copies of its weights in the whole model
  int64_t occurrences = 1;           // positions it stands for in its sequence
  std::string layers;                // where it occurs: "layers 0-31", "layers 1, 3, 5-7"
  std::string label;                 // its name in its sequence's layer order ("m", "m′")
  bool shared = false;               // one set of weights at every position
  bool frozen = false;               // nothing below trains
  bool partly_frozen = false;        // some of it trains, some does not
  bool lora = false;                 // LoRA adapters below
  double lr_min = 1, lr_max = 1;     // effective lr scales of what trains below
  bool expanded = false;             // its children are drawn
  std::vector<int> children;         // drawn children, in flow order
  int entry = -1, exit = -1;         // where edges into and out of it attach
};

struct Edge {
  int from = 0;
  int to = 0;
  bool residual = false;   // the skip path of a residual branch
  bool reference = false;  // a layer order naming a block it uses (`label`); no data flows
  bool hidden = false;     // keeps the drawing in order (blocks above the sequence's exit)
  std::string label;
};

struct Graph {
  std::vector<Node> nodes;  // nodes[0] is the model
  std::vector<Edge> edges;  // between entry/exit nodes, never containers
  const Node& root() const { return nodes.front(); }
};

struct Options {
  // 1: the model's parts; 2: blocks; 3: sub-layers (mixer, mlp, norms); 4: linears.
  int depth = 3;
  // Config paths drawn in full whatever the depth (e.g. model.decoder.block.mixer).
  std::vector<std::string> expand;
};

Graph build_graph(const config::Config& model, const Options& options = {});

// "0-31", "1, 3, 5-7": sorted positions as ranges.
std::string format_ranges(const std::vector<int64_t>& positions);
// "8.03B", "124M", "4.10K": parameter counts at a glance.
std::string format_count(int64_t count);

}  // namespace blocks::graph
