// The architecture graph of real configs: which nodes are drawn and in what order, where repeated
// blocks occur, parameter counts (recomputed here from the architecture numbers), residual
// structure, depth and --expand, and the frozen/LoRA marks.
#include "framework/graph/graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/graph/render.h"
#include "tests/support/model_text.h"

namespace {

using blocks::config::Diagnostics;
using blocks::config::Document;
using blocks::graph::build_graph;
using blocks::graph::Edge;
using blocks::graph::format_count;
using blocks::graph::format_ranges;
using blocks::graph::Graph;
using blocks::graph::Node;
using blocks::graph::NodeKind;
using blocks::graph::Options;

using blocks::testing::document;
using blocks::testing::zoo;

Graph graph_of(const std::string& name, const Options& options = {}) {
  const Document doc = zoo(name);
  return build_graph(*doc.model, options);
}

// Nodes in drawing order: each node, then its drawn children.
void preorder(const Graph& g, int id, std::vector<const Node*>& out) {
  const Node& n = g.nodes[static_cast<size_t>(id)];
  out.push_back(&n);
  for (int c : n.children) preorder(g, c, out);
}

std::vector<std::string> titles_in_drawing_order(const Graph& g) {
  std::vector<const Node*> nodes;
  preorder(g, 0, nodes);
  std::vector<std::string> titles;
  for (const Node* n : nodes) titles.push_back(n->title);
  return titles;
}

const Node& by_path(const Graph& g, const std::string& path) {
  for (const Node& n : g.nodes)
    if (n.path == path && n.kind != NodeKind::input && n.kind != NodeKind::sum) return n;
  ADD_FAILURE() << "no node at " << path;
  static const Node none;
  return none;
}

bool has_path(const Graph& g, const std::string& path) {
  return std::any_of(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.path == path; });
}

std::vector<const Node*> children_of_kind(const Graph& g, const Node& parent, NodeKind kind) {
  std::vector<const Node*> out;
  for (int c : parent.children)
    if (g.nodes[static_cast<size_t>(c)].kind == kind)
      out.push_back(&g.nodes[static_cast<size_t>(c)]);
  return out;
}

bool has_edge(const Graph& g, int from, int to, bool residual) {
  return std::any_of(g.edges.begin(), g.edges.end(), [&](const Edge& e) {
    return e.from == from && e.to == to && e.residual == residual;
  });
}

// Llama 3 8B, from its Hugging Face config.json.
constexpr int64_t kHidden = 4096, kHeads = 32, kGroups = 8, kHeadSize = 128, kFfn = 14336,
                  kVocab = 128256, kLayers = 32;
// Query and output are hidden x heads*head_size; key and value hidden x groups*head_size
// (that is 4*4096*4096 - 2*4096*3072 = 41,943,040).
constexpr int64_t kAttention = 2 * kHidden * kHeads * kHeadSize + 2 * kHidden * kGroups * kHeadSize;
constexpr int64_t kGatedMlp = 3 * kHidden * kFfn;                 // gate, up, down
constexpr int64_t kBlock = kAttention + kGatedMlp + 2 * kHidden;  // + two RMS norm weights
// Untied: embedding table, output projection and the final norm.
constexpr int64_t kModel = kVocab * kHidden + kLayers * kBlock + kVocab * kHidden + kHidden;
static_assert(kAttention == 41'943'040);
static_assert(kBlock == 218'112'000);
static_assert(kModel == 8'030'261'248);

TEST(Graph, Llama3NodesInDrawingOrder) {
  const Graph g = graph_of("llama3-8b");
  EXPECT_EQ(g.nodes.size(), 13u);
  EXPECT_EQ(g.edges.size(), 10u);
  const std::vector<std::string> expected = {"language_model",
                                             "embeddings",
                                             "decoder: repeat",
                                             "transformer",
                                             "input",
                                             "normalization: rms_norm",
                                             "mixer: attention",
                                             "+",
                                             "mlp_normalization: rms_norm",
                                             "mlp: gated",
                                             "+",
                                             "head",
                                             "normalization: rms_norm"};
  EXPECT_EQ(titles_in_drawing_order(g), expected);
  EXPECT_EQ(g.root().kind, NodeKind::model);
  EXPECT_EQ(g.root().details, std::vector<std::string>{"hidden_size 4096"});
  EXPECT_EQ(by_path(g, "model.decoder").details, std::vector<std::string>{"num_layers 32"});
  EXPECT_EQ(
      by_path(g, "model.decoder.block.mixer").details,
      (std::vector<std::string>{"heads 32", "head_groups 8", "head_size 128", "rotary default"}));
  EXPECT_EQ(by_path(g, "model.decoder.block.mlp").details,
            std::vector<std::string>{"intermediate_size 14336"});
}

TEST(Graph, Llama3RepeatedBlockIsOneNodeWithItsLayersAndCounts) {
  const Graph g = graph_of("llama3-8b");
  const Node& decoder = by_path(g, "model.decoder");
  const auto blocks = children_of_kind(g, decoder, NodeKind::block);
  ASSERT_EQ(blocks.size(), 1u);
  ASSERT_EQ(decoder.children.size(), 1u);
  const Node& block = *blocks[0];
  EXPECT_EQ(block.title, "transformer");
  EXPECT_EQ(block.occurrences, 32);
  EXPECT_EQ(block.copies, 32);
  EXPECT_FALSE(block.shared);
  EXPECT_EQ(block.layers, "layers 0-31");
  EXPECT_EQ(block.parameters, kBlock);
  EXPECT_EQ(by_path(g, "model.decoder.block.mixer").parameters, kAttention);
  EXPECT_EQ(by_path(g, "model.decoder.block.mlp").parameters, kGatedMlp);
  EXPECT_EQ(by_path(g, "model.decoder.block.normalization").parameters, kHidden);
  EXPECT_EQ(by_path(g, "model.decoder.block.mixer").copies, 32);
  EXPECT_EQ(decoder.parameters, kLayers * kBlock);
  EXPECT_EQ(by_path(g, "model.embeddings").parameters, kVocab * kHidden);
  EXPECT_EQ(by_path(g, "model.head").parameters, kVocab * kHidden + kHidden);
  EXPECT_EQ(g.root().parameters, kModel);
  for (const Node& n : g.nodes) {
    EXPECT_FALSE(n.frozen || n.partly_frozen || n.lora || n.shared) << n.path;
  }
}

TEST(Graph, Llama3ResidualStructure) {
  const Graph g = graph_of("llama3-8b");
  const Node& block = by_path(g, "model.decoder.block");
  const auto inputs = children_of_kind(g, block, NodeKind::input);
  const auto sums = children_of_kind(g, block, NodeKind::sum);
  ASSERT_EQ(inputs.size(), 1u);
  ASSERT_EQ(sums.size(), 2u);
  EXPECT_EQ(std::count_if(g.nodes.begin(), g.nodes.end(),
                          [](const Node& n) { return n.kind == NodeKind::sum; }),
            2);
  // One dashed (residual) edge into each sum: from the block input, then from the first sum.
  for (const Node* sum : sums)
    EXPECT_EQ(std::count_if(g.edges.begin(), g.edges.end(),
                            [&](const Edge& e) { return e.to == sum->id && e.residual; }),
              1);
  EXPECT_EQ(std::count_if(g.edges.begin(), g.edges.end(), [](const Edge& e) { return e.residual; }),
            2);
  const int input = inputs[0]->id, sum1 = sums[0]->id, sum2 = sums[1]->id;
  const int norm = by_path(g, "model.decoder.block.normalization").id;
  const int mixer = by_path(g, "model.decoder.block.mixer").id;
  const int mlp_norm = by_path(g, "model.decoder.block.mlp_normalization").id;
  const int mlp = by_path(g, "model.decoder.block.mlp").id;
  EXPECT_TRUE(has_edge(g, input, sum1, true));
  EXPECT_TRUE(has_edge(g, sum1, sum2, true));
  // Pre-norm: x -> norm -> mixer -> (+ x) -> norm -> mlp -> (+).
  EXPECT_TRUE(has_edge(g, input, norm, false));
  EXPECT_TRUE(has_edge(g, norm, mixer, false));
  EXPECT_TRUE(has_edge(g, mixer, sum1, false));
  EXPECT_TRUE(has_edge(g, sum1, mlp_norm, false));
  EXPECT_TRUE(has_edge(g, mlp_norm, mlp, false));
  EXPECT_TRUE(has_edge(g, mlp, sum2, false));
  // Into the block at its input, out of it at the last sum.
  EXPECT_EQ(block.entry, input);
  EXPECT_EQ(block.exit, sum2);
  EXPECT_TRUE(has_edge(g, by_path(g, "model.embeddings").id, input, false));
  EXPECT_TRUE(has_edge(g, sum2, by_path(g, "model.head.normalization").id, false));
  // Edges join drawn points only, never containers.
  for (const Edge& e : g.edges) {
    EXPECT_FALSE(g.nodes[static_cast<size_t>(e.from)].expanded) << e.from;
    EXPECT_FALSE(g.nodes[static_cast<size_t>(e.to)].expanded) << e.to;
  }
}

// KOSMOS-1: tower -> resampler -> projection -> the decoder's embeddings, the last edge saying
// what the features replace; the resampler's two layers are copies, not a layer order.
TEST(Graph, EarlyFusionChainsConnectorsIntoTheEmbeddings) {
  const Graph g = graph_of("kosmos-1");
  const Node& tower = by_path(g, "model.encoders.image.encoder");
  const Node& resampler = by_path(g, "model.encoders.image.connectors[0]");
  const Node& projection = by_path(g, "model.encoders.image.connectors[1]");
  const Node& embeddings = by_path(g, "model.decoder.embeddings");
  EXPECT_TRUE(has_edge(g, tower.exit, resampler.entry, false));
  EXPECT_TRUE(has_edge(g, resampler.exit, projection.entry, false));
  const auto splice = std::find_if(g.edges.begin(), g.edges.end(), [&](const Edge& e) {
    return e.from == projection.exit && e.to == embeddings.entry;
  });
  ASSERT_NE(splice, g.edges.end());
  EXPECT_EQ(splice->label, "64 features replace token 32002, between 32000 and 32001");
  EXPECT_TRUE(children_of_kind(g, resampler, NodeKind::order).empty());
  const Node& layer = by_path(g, "model.encoders.image.connectors[0].layer");
  EXPECT_EQ(layer.occurrences, 2);
  EXPECT_TRUE(has_edge(g, layer.exit,
                       by_path(g, "model.encoders.image.connectors[0].final_normalization").entry,
                       false));
}

TEST(Graph, SizeDoesNotGrowWithLayerCount) {
  const Graph small = graph_of("llama3-8b");
  const Graph large = graph_of("llama3-70b");
  EXPECT_EQ(large.nodes.size(), small.nodes.size());
  EXPECT_EQ(large.edges.size(), small.edges.size());
  EXPECT_EQ(titles_in_drawing_order(large), titles_in_drawing_order(small));
  const Node& block = by_path(large, "model.decoder.block");
  EXPECT_EQ(block.layers, "layers 0-79");
  EXPECT_EQ(block.occurrences, 80);
  // 8192 wide, 64 heads in 8 groups of 128, MLP 28672.
  constexpr int64_t attention = 2 * 8192 * 64 * 128 + 2 * 8192 * 8 * 128;
  constexpr int64_t block_params = attention + 3 * 8192 * 28672 + 2 * 8192;
  EXPECT_EQ(block.parameters, block_params);
  EXPECT_EQ(large.root().parameters, int64_t{2} * 128256 * 8192 + 80 * block_params + 8192);
}

TEST(Graph, HybridPatternShowsEachDistinctBlockOnce) {
  const Graph g = graph_of("hybrid-mamba-attention");
  const Node& decoder = by_path(g, "model.decoder");
  EXPECT_EQ(decoder.title, "decoder: pattern");
  const auto blocks = children_of_kind(g, decoder, NodeKind::block);
  ASSERT_EQ(blocks.size(), 3u);
  // In the order of their first layer: m (0), M (1), a (4).
  EXPECT_EQ(blocks[0]->title, "m: transformer");
  EXPECT_EQ(blocks[0]->label, "m");
  EXPECT_EQ(blocks[0]->layers, "layers 0, 2, 6, 8, 10, 14, 16, 18, 22, 24, 26, 30");
  EXPECT_EQ(blocks[0]->occurrences, 12);
  EXPECT_EQ(blocks[1]->title, "M: transformer");
  EXPECT_EQ(blocks[1]->layers, "layers 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31");
  EXPECT_EQ(blocks[1]->occurrences, 16);
  EXPECT_EQ(blocks[2]->title, "a: transformer");
  EXPECT_EQ(blocks[2]->layers, "layers 4, 12, 20, 28");
  EXPECT_EQ(blocks[2]->occurrences, 4);
  // The layers alternate between the blocks, so no arrow runs from block to block (it would
  // read as the layer order, m -> M -> a): a layer order node says which layer is which and
  // points at each block it uses.
  for (const Node* from : blocks)
    for (const Node* to : blocks) EXPECT_FALSE(has_edge(g, from->exit, to->entry, false));
  const auto orders = children_of_kind(g, decoder, NodeKind::order);
  ASSERT_EQ(orders.size(), 1u);
  const Node& order = *orders[0];
  EXPECT_EQ(order.title, "layer order (32 layers)");
  EXPECT_EQ(order.details,
            (std::vector<std::string>{"0 m · 1 M · 2 m · 3 M", "4 a · 5 M · 6 m · 7 M",
                                      "the 8 above ×4: layers 0-31"}));
  for (const Node* block : blocks)
    EXPECT_TRUE(std::any_of(g.edges.begin(), g.edges.end(), [&](const Edge& e) {
      return e.from == order.id && e.to == block->entry && e.reference && e.label == block->label;
    })) << block->title;
  EXPECT_EQ(decoder.entry, order.id);
  const Node& exit = g.nodes[static_cast<size_t>(decoder.exit)];
  EXPECT_EQ(exit.kind, NodeKind::input);
  for (const Node* block : blocks) {
    EXPECT_TRUE(std::any_of(g.edges.begin(), g.edges.end(), [&](const Edge& e) {
      return e.from == block->exit && e.to == exit.id && e.hidden;
    })) << block->title;
  }

  // Jamba v0.1: hidden 4096, Mamba inner 2 * 4096, state 16, conv 4, dt_rank 256.
  constexpr int64_t h = 4096, inner = 2 * h, state = 16, conv = 4, dt_rank = 256;
  constexpr int64_t mamba = h * 2 * inner                    // in_proj (x and z)
                            + inner * conv + inner           // depthwise conv, bias
                            + inner * (dt_rank + 2 * state)  // x_proj to dt, B, C
                            + dt_rank * inner + inner        // dt_proj, bias
                            + inner * state + inner          // A_log, D
                            + inner * h                      // out_proj
                            + dt_rank + 2 * state;           // RMS norms on dt, B, C
  constexpr int64_t dense = 3 * h * 14336;
  constexpr int64_t moe = 16 * 3 * h * 14336 + h * 16;  // 16 gated experts and the router
  constexpr int64_t attention = 2 * h * 32 * 128 + 2 * h * 8 * 128;
  constexpr int64_t norms = 2 * h;
  EXPECT_EQ(by_path(g, "model.decoder.blocks.m.mixer").parameters, mamba);
  EXPECT_EQ(blocks[0]->parameters, mamba + dense + norms);
  EXPECT_EQ(blocks[1]->parameters, mamba + moe + norms);
  EXPECT_EQ(blocks[2]->parameters, attention + dense + norms);
  constexpr int64_t decoder_params =
      12 * (mamba + dense + norms) + 16 * (mamba + moe + norms) + 4 * (attention + dense + norms);
  EXPECT_EQ(decoder.parameters, decoder_params);
  constexpr int64_t total = 65536 * h + decoder_params + 65536 * h + h;
  static_assert(total == 51'570'323'328);
  EXPECT_EQ(g.root().parameters, total);
}

// Layers of a pattern split out by a layer-ranged LoRA target keep their block's letter,
// primed, in their titles and in the layer order.
TEST(Graph, PatternLayersSplitByLoraRangesKeepTheirLetter) {
  blocks::config::LoadOptions options;
  options.sets = {
      "model.peft={type: lora, rank: 4, alpha: 8, targets: [{name: mlp, layers: [16, 31]}]}"};
  const Document doc = zoo("hybrid-mamba-attention", options);
  const Graph g = build_graph(*doc.model);
  const Node& decoder = by_path(g, "model.decoder");
  std::vector<std::string> titles, layers;
  for (const Node* b : children_of_kind(g, decoder, NodeKind::block)) {
    titles.push_back(b->title);
    layers.push_back(b->layers);
  }
  EXPECT_EQ(titles,
            (std::vector<std::string>{"m: transformer", "M: transformer", "a: transformer",
                                      "m′: transformer", "M′: transformer", "a′: transformer"}));
  EXPECT_EQ(layers[3], "layers 16, 18, 22, 24, 26, 30");
  EXPECT_EQ(layers[5], "layers 20, 28");
  const auto orders = children_of_kind(g, decoder, NodeKind::order);
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0]->details,
            (std::vector<std::string>{
                "0 m · 1 M · 2 m · 3 M", "4 a · 5 M · 6 m · 7 M", "the 8 above ×2: layers 0-15",
                "16 m′ · 17 M′ · 18 m′ · 19 M′", "20 a′ · 21 M′ · 22 m′ · 23 M′",
                "the 8 above ×2: layers 16-31", "′: that block with per-layer changes"}));
}

TEST(Graph, DepthChoosesTheLevelOfDetail) {
  // Depth 4 adds the linears and weights, plus the points where parallel parts start and join:
  // attention's query/key/value input, and the embeddings' input and token + position sum.
  const std::vector<size_t> expected = {4, 6, 13, 24};
  for (int depth = 1; depth <= 4; ++depth) {
    Options options;
    options.depth = depth;
    const Graph g = graph_of("gpt2", options);
    EXPECT_EQ(g.nodes.size(), expected[static_cast<size_t>(depth - 1)]) << "depth " << depth;
  }
  Options one;
  one.depth = 1;
  const Graph g1 = graph_of("gpt2", one);
  EXPECT_EQ(titles_in_drawing_order(g1),
            (std::vector<std::string>{"language_model", "embeddings", "decoder: repeat", "head"}));
  EXPECT_FALSE(g1.nodes[2].expanded);
  EXPECT_EQ(g1.nodes[2].parameters,
            12 * by_path(graph_of("gpt2"), "model.decoder.block").parameters);
  EXPECT_EQ(g1.edges.size(), 2u);

  Options two;
  two.depth = 2;
  const Graph g2 = graph_of("gpt2", two);
  EXPECT_EQ(titles_in_drawing_order(g2),
            (std::vector<std::string>{"language_model", "embeddings", "decoder: repeat",
                                      "transformer", "head", "normalization: layer_norm"}));
  EXPECT_FALSE(by_path(g2, "model.decoder.block").expanded);
  EXPECT_EQ(by_path(g2, "model.decoder.block").layers, "layers 0-11");

  Options four;
  four.depth = 4;
  const Graph g4 = graph_of("gpt2", four);
  for (const char* path : {"model.embeddings.word", "model.embeddings.position",
                           "model.decoder.block.mixer.query", "model.decoder.block.mixer.key",
                           "model.decoder.block.mixer.value", "model.decoder.block.mixer.output",
                           "model.decoder.block.mlp.up", "model.decoder.block.mlp.down"})
    EXPECT_TRUE(has_path(g4, path)) << path;
  // GPT-2 small: 768 wide, biases everywhere.
  EXPECT_EQ(by_path(g4, "model.decoder.block.mixer.query").parameters, 768 * 768 + 768);
  EXPECT_EQ(by_path(g4, "model.decoder.block.mlp.up").parameters, 768 * 3072 + 3072);
  EXPECT_EQ(g4.root().parameters, 124'439'808);
  // Token and position embeddings are looked up side by side and summed.
  const Node& embeddings = by_path(g4, "model.embeddings");
  ASSERT_EQ(embeddings.children.size(), 4u);
  const Node& sum = g4.nodes[static_cast<size_t>(embeddings.exit)];
  EXPECT_EQ(sum.kind, NodeKind::sum);
  EXPECT_TRUE(has_edge(g4, by_path(g4, "model.embeddings.word").id, sum.id, false));
  EXPECT_TRUE(has_edge(g4, by_path(g4, "model.embeddings.position").id, sum.id, false));
}

TEST(Graph, ExpandDrawsLinearsOnlyInsideThatPath) {
  Options options;
  options.expand = {"model.decoder.block.mixer"};
  const Graph g = graph_of("gpt2", options);
  EXPECT_EQ(g.nodes.size(), 18u);
  const Node& mixer = by_path(g, "model.decoder.block.mixer");
  EXPECT_TRUE(mixer.expanded);
  std::vector<std::string> titles;
  for (int c : mixer.children) titles.push_back(g.nodes[static_cast<size_t>(c)].title);
  // Query, key and value run side by side from one input point, then the output projection.
  EXPECT_EQ(titles, (std::vector<std::string>{"input", "query", "key", "value", "output"}));
  for (size_t i = 1; i < mixer.children.size(); ++i)
    EXPECT_EQ(g.nodes[static_cast<size_t>(mixer.children[i])].path,
              "model.decoder.block.mixer." + g.nodes[static_cast<size_t>(mixer.children[i])].title);
  const int input = mixer.children.front();
  EXPECT_EQ(g.nodes[static_cast<size_t>(input)].kind, NodeKind::input);
  for (const char* name : {"query", "key", "value"}) {
    const int linear = by_path(g, std::string("model.decoder.block.mixer.") + name).id;
    EXPECT_TRUE(has_edge(g, input, linear, false)) << name;
    EXPECT_TRUE(has_edge(g, linear, by_path(g, "model.decoder.block.mixer.output").id, false))
        << name;
  }
  for (const char* path : {"model.decoder.block.mlp.up", "model.decoder.block.mlp.down",
                           "model.embeddings.word", "model.embeddings.position"})
    EXPECT_FALSE(has_path(g, path)) << path;
  EXPECT_FALSE(by_path(g, "model.decoder.block.mlp").expanded);
  // The block's flow enters the mixer at its input point and leaves at its output projection.
  EXPECT_TRUE(has_edge(g, by_path(g, "model.decoder.block.normalization").id, input, false));
}

TEST(Graph, ExpandMatchesWholePathComponents) {
  // A path that names no config expands nothing, even where it begins another's name.
  Options prefix;
  prefix.expand = {"model.decoder.block.m"};
  EXPECT_EQ(graph_of("gpt2", prefix).nodes.size(), 13u);

  // Override 1 is expanded; override 12 (whose path begins with "...overrides.1") is not.
  const Document doc = document(R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: repeat
    num_layers: 13
    block:
      type: transformer
      mixer: {type: attention, rotary: {type: none}, heads: 4}
      mlp: {type: mlp, intermediate_size: 128}
      normalization: {type: rms_norm}
    overrides:
      1: {mixer: {lr_scale: 0.5}}
      12: {mlp: {lr_scale: 0.5}}
  head:
    normalization: {type: rms_norm}
)");
  Options options;
  options.expand = {"model.decoder.overrides.1"};
  const Graph g = build_graph(*doc.model, options);
  for (const char* path :
       {"model.decoder.overrides.1.mixer.query", "model.decoder.overrides.1.mlp.up"})
    EXPECT_TRUE(has_path(g, path)) << path;
  for (const char* path : {"model.decoder.overrides.12.mixer.query",
                           "model.decoder.overrides.12.mlp.up", "model.decoder.block.mixer.query"})
    EXPECT_FALSE(has_path(g, path)) << path;
  EXPECT_EQ(by_path(g, "model.decoder.overrides.1").layers, "layer 1");
  EXPECT_EQ(by_path(g, "model.decoder.overrides.12").layers, "layer 12");
  EXPECT_EQ(by_path(g, "model.decoder.block").layers, "layers 0, 2-11");
}

TEST(Graph, LoraMarksAdaptersAndFrozenBaseWeights) {
  const Graph g = graph_of("lora");
  // Rank 16 on query (4096 -> 4096) and value (4096 -> 1024) everywhere, and on gate, up and
  // down (4096 <-> 14336) in layers 16-31: A is rank x in, B is out x rank.
  constexpr int64_t r = 16;
  constexpr int64_t qv = r * (kHidden + kHidden) + r * (kHidden + kGroups * kHeadSize);
  constexpr int64_t mlp_lora = 3 * r * (kHidden + kFfn);
  EXPECT_EQ(g.root().parameters, kModel + kLayers * qv + 16 * mlp_lora);
  EXPECT_TRUE(g.root().lora);
  EXPECT_TRUE(g.root().partly_frozen);
  EXPECT_FALSE(g.root().frozen);

  // Layers 16-31 differ from 0-15 (MLP adapters) and are alike: two block nodes, not 17.
  const Node& decoder = by_path(g, "model.decoder");
  const auto blocks = children_of_kind(g, decoder, NodeKind::block);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0]->path, "model.decoder.block");
  EXPECT_EQ(blocks[0]->layers, "layers 0-15");
  EXPECT_EQ(blocks[0]->occurrences, 16);
  EXPECT_EQ(blocks[0]->title, "transformer");
  EXPECT_EQ(blocks[1]->layers, "layers 16-31");
  EXPECT_EQ(blocks[1]->occurrences, 16);
  EXPECT_EQ(blocks[1]->copies, 16);
  EXPECT_EQ(blocks[1]->title, "transformer");
  EXPECT_EQ(blocks[1]->parameters, kBlock + qv + mlp_lora);
  EXPECT_EQ(g.nodes.size(), 21u);
  EXPECT_TRUE(has_edge(g, blocks[0]->exit, blocks[1]->entry, false));
  EXPECT_EQ(decoder.parameters, 16 * (kBlock + qv) + 16 * (kBlock + qv + mlp_lora));

  for (const Node* block : blocks) {
    SCOPED_TRACE(block->layers);
    EXPECT_TRUE(block->lora);
    EXPECT_TRUE(block->partly_frozen);
    EXPECT_FALSE(block->frozen);
    const Node& mixer = g.nodes[static_cast<size_t>(block->children[2])];
    ASSERT_EQ(mixer.category, "mixer");
    EXPECT_EQ(mixer.parameters, kAttention + qv);
    EXPECT_TRUE(mixer.lora);
    EXPECT_TRUE(mixer.partly_frozen);  // adapters train, base weights do not
    EXPECT_FALSE(mixer.frozen);
    for (int c : block->children) {
      const Node& n = g.nodes[static_cast<size_t>(c)];
      if (n.category != "normalization") continue;
      EXPECT_TRUE(n.frozen) << n.path;  // PEFT freezes everything but the adapters
      EXPECT_FALSE(n.lora) << n.path;
    }
  }
  const Node& mlp_low = by_path(g, "model.decoder.block.mlp");
  EXPECT_FALSE(mlp_low.lora);
  EXPECT_TRUE(mlp_low.frozen);
  EXPECT_FALSE(mlp_low.partly_frozen);
  const Node& mlp_high = g.nodes[static_cast<size_t>(blocks[1]->children[5])];
  ASSERT_EQ(mlp_high.category, "mlp");
  EXPECT_TRUE(mlp_high.lora);
  EXPECT_TRUE(mlp_high.partly_frozen);
  EXPECT_EQ(mlp_high.parameters, kGatedMlp + mlp_lora);
  for (const char* path : {"model.embeddings", "model.head", "model.head.normalization"}) {
    EXPECT_TRUE(by_path(g, path).frozen) << path;
    EXPECT_FALSE(by_path(g, path).lora) << path;
  }

  // Down to the linears: adapted ones train in part, the others are frozen.
  Options four;
  four.depth = 4;
  const Graph g4 = graph_of("lora", four);
  for (const char* name : {"query", "value"}) {
    const Node& n = by_path(g4, std::string("model.decoder.block.mixer.") + name);
    EXPECT_TRUE(n.lora && n.partly_frozen && !n.frozen) << name;
  }
  for (const char* name : {"key", "output"}) {
    const Node& n = by_path(g4, std::string("model.decoder.block.mixer.") + name);
    EXPECT_TRUE(!n.lora && n.frozen && !n.partly_frozen) << name;
  }
}

TEST(Graph, LrScaleZeroOverridesAreFrozen) {
  const Graph g = graph_of("per-layer-lr-scales");
  const Node& decoder = by_path(g, "model.decoder");
  const auto blocks = children_of_kind(g, decoder, NodeKind::block);
  ASSERT_EQ(blocks.size(), 3u);
  // In layer order: the frozen overrides 0 and 1 (alike: one node), the block, override 7.
  EXPECT_EQ(blocks[0]->layers, "layers 0, 1");
  EXPECT_EQ(blocks[0]->occurrences, 2);
  EXPECT_EQ(blocks[0]->title, "transformer");
  EXPECT_TRUE(blocks[0]->frozen);
  EXPECT_FALSE(blocks[0]->partly_frozen);
  for (int c : blocks[0]->children) {
    const Node& n = g.nodes[static_cast<size_t>(c)];
    if (n.kind == NodeKind::layer) EXPECT_TRUE(n.frozen) << n.path;
  }
  EXPECT_EQ(blocks[1]->path, "model.decoder.block");
  EXPECT_EQ(blocks[1]->layers, "layers 2-6");
  EXPECT_EQ(blocks[1]->occurrences, 5);
  EXPECT_FALSE(blocks[1]->frozen || blocks[1]->partly_frozen);
  EXPECT_EQ(blocks[2]->path, "model.decoder.overrides.7");
  EXPECT_EQ(blocks[2]->title, "7: transformer");
  EXPECT_EQ(blocks[2]->layers, "layer 7");
  EXPECT_FALSE(blocks[2]->frozen || blocks[2]->partly_frozen);
  EXPECT_TRUE(has_edge(g, blocks[0]->exit, blocks[1]->entry, false));
  EXPECT_TRUE(has_edge(g, blocks[1]->exit, blocks[2]->entry, false));

  // Width 512, 8 heads of 64, gated MLP 1408: 2 of 8 layers frozen.
  constexpr int64_t block = 4 * 512 * 512 + 3 * 512 * 1408 + 2 * 512;
  EXPECT_EQ(blocks[0]->parameters, block);
  EXPECT_EQ(decoder.parameters, 8 * block);
  EXPECT_TRUE(decoder.partly_frozen);
  EXPECT_TRUE(g.root().partly_frozen);
  EXPECT_FALSE(by_path(g, "model.embeddings").frozen);  // lr_scale 0.5 still trains
  EXPECT_FALSE(by_path(g, "model.head").frozen);
}

TEST(Graph, FormatRanges) {
  EXPECT_EQ(format_ranges({}), "");
  EXPECT_EQ(format_ranges({3}), "3");
  EXPECT_EQ(format_ranges({0, 1}), "0, 1");
  EXPECT_EQ(format_ranges({0, 1, 2}), "0-2");
  EXPECT_EQ(format_ranges({0, 1, 2, 5, 7, 8, 9}), "0-2, 5, 7-9");
  EXPECT_EQ(format_ranges({9, 8, 7, 0, 5, 2, 1}), "0-2, 5, 7-9");
  EXPECT_EQ(format_ranges({4, 12, 20, 28}), "4, 12, 20, 28");
}

TEST(Graph, FormatCount) {
  EXPECT_EQ(format_count(0), "0");
  EXPECT_EQ(format_count(999), "999");
  EXPECT_EQ(format_count(1000), "1.00K");
  EXPECT_EQ(format_count(4096), "4.10K");
  EXPECT_EQ(format_count(41'943'040), "41.9M");
  EXPECT_EQ(format_count(124'439'808), "124M");
  EXPECT_EQ(format_count(8'030'261'248), "8.03B");
  EXPECT_EQ(format_count(70'553'706'496), "70.6B");
  // Rounding that reaches the next digit or unit is written in it.
  EXPECT_EQ(format_count(9'999), "10.0K");
  EXPECT_EQ(format_count(99'999), "100K");
  EXPECT_EQ(format_count(999'999), "1.00M");
  EXPECT_EQ(format_count(999'499), "999K");
}

TEST(Graph, LearningRateScalesShowWhereTheyApply) {
  const Graph g = graph_of("per-layer-lr-scales");
  // Products down the tree: the sequence's 0.8, the attention output's 0.5, layer 7's mixer 2.0.
  const Node& base_mixer = by_path(g, "model.decoder.block.mixer");
  EXPECT_DOUBLE_EQ(base_mixer.lr_min, 0.4);
  EXPECT_DOUBLE_EQ(base_mixer.lr_max, 0.8);
  const Node& last_mixer = by_path(g, "model.decoder.overrides.7.mixer");
  EXPECT_DOUBLE_EQ(last_mixer.lr_min, 0.8);
  EXPECT_DOUBLE_EQ(last_mixer.lr_max, 1.6);
  const Node& head = by_path(g, "model.head");
  EXPECT_DOUBLE_EQ(head.lr_min, 0.1);
  EXPECT_DOUBLE_EQ(head.lr_max, 0.1);
  const std::string dot = blocks::graph::to_dot(g, "x");
  EXPECT_NE(dot.find("lr ×0.4-0.8"), std::string::npos);
  EXPECT_NE(dot.find("lr ×0.8-1.6"), std::string::npos);
  EXPECT_NE(dot.find("lr ×0.1<"), std::string::npos);
  // Nothing at lr 1 is marked.
  EXPECT_EQ(graph_of("llama3-8b").root().lr_min, 1.0);
  EXPECT_EQ(blocks::graph::to_dot(graph_of("llama3-8b"), "x").find("lr ×"), std::string::npos);
}

}  // namespace
