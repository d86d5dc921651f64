// The drawings parse: DOT through Graphviz, SVG as XML, Mermaid's structure (subgraphs closed,
// edges between declared nodes, labels quoted safely), for every config and names that need
// escaping; their size does not grow with the layer count; a missing Graphviz is reported.
#include "framework/graph/render.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/graph/graph.h"
#include "tests/support/model_text.h"
#include "tests/support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using blocks::config::Diagnostics;
using blocks::config::Document;
using blocks::graph::build_graph;
using blocks::graph::Graph;
using blocks::graph::Options;
using blocks::graph::to_dot;
using blocks::graph::to_mermaid;
using blocks::graph::to_svg;

// Block names that need escaping in DOT's HTML labels and Mermaid's quoted ones.
constexpr const char* kOddNames = R"(version: 1
model:
  type: language_model
  hidden_size: 64
  embeddings: {vocab_size: 100}
  decoder:
    type: pattern
    pattern: ['say "hi"', 'x<y> & #quot; z', 'say "hi"']
    blocks:
      'say "hi"':
        type: transformer
        mixer: {type: attention, rotary: {type: none}, heads: 4}
        mlp: {type: mlp, intermediate_size: 128}
        normalization: {type: rms_norm}
      'x<y> & #quot; z':
        type: transformer
        mixer: {type: attention, rotary: {type: none}, heads: 2}
        mlp: {type: mlp, intermediate_size: 256}
        normalization: {type: rms_norm}
  head:
    normalization: {type: rms_norm}
)";

Graph graph_of(const std::string& name, const Options& options = {}) {
  const auto doc = name == "odd-names" ? blocks::testing::document(kOddNames, "odd-names.yaml")
                                       : blocks::testing::zoo(name);
  return build_graph(*doc.model, options);
}

std::vector<std::string> all_configs() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(BLOCKS_SOURCE_DIR "/configs"))
    if (e.path().extension() == ".yaml") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  out.push_back("odd-names");
  return out;
}

using Scratch = blocks::testing::TempDir;

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

bool dot_accepts(const std::string& file) {
  return run("dot -Tsvg '" + file + "' -o /dev/null") == 0;
}

bool well_formed_xml(const std::string& file) {
  return run("python3 -c \"import xml.etree.ElementTree as E,sys; E.parse(sys.argv[1])\" '" + file +
             "'") == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(' ');
  return a == std::string::npos ? "" : s.substr(a);
}

// Checks Mermaid's structure; returns the problems found.
std::vector<std::string> mermaid_problems(const std::string& text) {
  std::vector<std::string> problems;
  const auto lines = lines_of(text);
  if (lines.empty() || lines[0] != "flowchart TB") problems.push_back("no flowchart header");
  static const std::regex node(R"re(n(\d+)(\["(.*)"\]|\[/"(.*)"/\]|\(\( \)\)|\(\(\+\)\)))re");
  static const std::regex subgraph(R"re(subgraph n(\d+) \["(.*)"\])re");
  static const std::regex edge(R"re(n(\d+) (-->|-->\|"[^"]*"\||-\.->|-\.->\|"[^"]*"\||~~~) n(\d+))re");
  static const std::regex cls(R"re(class n(\d+) (mixer|mlp|norm|io|frozen))re");
  std::set<std::string> nodes, subgraphs;
  std::vector<std::pair<std::string, std::string>> edges;
  std::vector<std::string> labels;
  int open = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string l = trim(lines[i]);
    std::smatch m;
    if (std::regex_match(l, m, subgraph)) {
      ++open;
      if (!subgraphs.insert(m[1]).second || nodes.count(m[1])) problems.push_back("twice: " + l);
      labels.push_back(m[2]);
    } else if (l == "end") {
      if (--open < 0) problems.push_back("end without subgraph at line " + std::to_string(i + 1));
    } else if (std::regex_match(l, m, node)) {
      if (!nodes.insert(m[1]).second || subgraphs.count(m[1])) problems.push_back("twice: " + l);
      if (m[3].matched) labels.push_back(m[3]);
      if (m[4].matched) labels.push_back(m[4]);
    } else if (std::regex_match(l, m, edge)) {
      edges.emplace_back(m[1], m[3]);
    } else if (l != "direction TB" && l.rfind("classDef ", 0) != 0 && !std::regex_match(l, cls)) {
      problems.push_back("unexpected line: " + l);
    }
  }
  if (open != 0) problems.push_back(std::to_string(open) + " subgraph(s) not closed");
  for (const auto& [from, to] : edges)
    for (const auto& end : {from, to})
      if (!nodes.count(end)) problems.push_back("edge endpoint n" + end + " is not a node");
  for (const auto& label : labels) {
    if (label.find('"') != std::string::npos) problems.push_back("raw quote in " + label);
    // Only our own markup: <b>, </b>, <br/>.
    const std::string bare = std::regex_replace(label, std::regex("<b>|</b>|<br/>"), std::string());
    if (bare.find_first_of("<>") != std::string::npos) problems.push_back("markup in " + label);
  }
  if (edges.empty()) problems.push_back("no edges");
  return problems;
}

TEST(Render, DotIsAcceptedByGraphviz) {
  Scratch scratch;
  // The check itself rejects broken DOT.
  EXPECT_FALSE(dot_accepts(scratch.write("broken.dot", "digraph { n0 -> ; }\n")));
  for (const auto& name : all_configs()) {
    for (int depth = 1; depth <= 4; ++depth) {
      SCOPED_TRACE(name + " at depth " + std::to_string(depth));
      Options options;
      options.depth = depth;
      const std::string dot = to_dot(graph_of(name, options), name + ".yaml");
      EXPECT_EQ(
          dot.rfind("// Generated by blockc diagram from " + name + ".yaml\ndigraph blocks {\n", 0),
          0u);
      EXPECT_TRUE(dot_accepts(scratch.write(name + ".dot", dot)));
    }
  }
}

TEST(Render, DotEdgesJoinDeclaredNodes) {
  for (const auto& name : all_configs()) {
    SCOPED_TRACE(name);
    const std::string dot = to_dot(graph_of(name), name);
    std::set<std::string> nodes, clusters;
    static const std::regex node(R"re(^\s*n(\d+) \[)re");
    static const std::regex cluster(R"re(^\s*subgraph cluster_(\d+) \{)re");
    // Plain, dashed (residual), dotted (layer order), invisible, or labelled (what a fusion
  // model's features replace).
  static const std::regex edge(
      R"re(^\s*n(\d+) -> n(\d+)( \[style=(dashed|dotted|invis)[^\]]*\]| \[label=<[^>]*>[^\]]*\])?;$)re");
    int edges = 0;
    for (const auto& l : lines_of(dot)) {
      std::smatch m;
      if (std::regex_search(l, m, node)) nodes.insert(m[1]);
      if (std::regex_search(l, m, cluster)) clusters.insert(m[1]);
    }
    for (const auto& l : lines_of(dot)) {
      std::smatch m;
      if (!std::regex_match(l, m, edge)) continue;
      ++edges;
      EXPECT_TRUE(nodes.count(m[1])) << l;
      EXPECT_TRUE(nodes.count(m[2])) << l;
    }
    EXPECT_EQ(static_cast<size_t>(edges), graph_of(name).edges.size());
    for (const auto& c : clusters) EXPECT_FALSE(nodes.count(c)) << "n" << c << " is a cluster";
  }
}

TEST(Render, DotEscapesNames) {
  const std::string dot = to_dot(graph_of("odd-names"), "odd-names.yaml");
  EXPECT_NE(dot.find("<b>say &quot;hi&quot;: transformer</b>"), std::string::npos);
  EXPECT_NE(dot.find("<b>x&lt;y&gt; &amp; #quot; z: transformer</b>"), std::string::npos);
  EXPECT_EQ(dot.find("x<y>"), std::string::npos);
}

TEST(Render, SvgIsWellFormedXml) {
  Scratch scratch;
  EXPECT_FALSE(well_formed_xml(scratch.write("broken.svg", "<svg><g></svg>")));
  for (const char* name : {"llama3-8b", "hybrid-mamba-attention", "lora", "odd-names"}) {
    SCOPED_TRACE(name);
    std::string error;
    const auto svg = to_svg(to_dot(graph_of(name), name), error);
    ASSERT_TRUE(svg) << error;
    EXPECT_EQ(error, "");
    EXPECT_NE(svg->find("<svg width="), std::string::npos);
    EXPECT_TRUE(well_formed_xml(scratch.write(std::string(name) + ".svg", *svg)));
  }
}

std::string svg_size(const std::string& svg) {
  static const std::regex size(R"re(<svg width="([^"]+)" height="([^"]+)")re");
  std::smatch m;
  if (!std::regex_search(svg, m, size)) return "no size";
  return m[1].str() + " x " + m[2].str();
}

TEST(Render, SizeDoesNotGrowWithLayerCount) {
  const Graph small = graph_of("llama3-8b");
  const Graph large = graph_of("llama3-70b");
  const std::string dot_small = to_dot(small, "x"), dot_large = to_dot(large, "x");
  EXPECT_EQ(lines_of(dot_large).size(), lines_of(dot_small).size());
  EXPECT_NE(dot_large.find("layers 0-79"), std::string::npos);
  EXPECT_NE(dot_small.find("layers 0-31"), std::string::npos);
  std::string error;
  const auto svg_small = to_svg(dot_small, error);
  ASSERT_TRUE(svg_small) << error;
  const auto svg_large = to_svg(dot_large, error);
  ASSERT_TRUE(svg_large) << error;
  EXPECT_NE(svg_size(*svg_small), "no size");
  EXPECT_EQ(svg_size(*svg_large), svg_size(*svg_small));
  EXPECT_EQ(lines_of(to_mermaid(large)).size(), lines_of(to_mermaid(small)).size());
}

TEST(Render, MermaidStructure) {
  // The checker finds what it looks for.
  EXPECT_EQ(
      mermaid_problems("flowchart TB\n  subgraph n0 [\"a\"]\n  n1[\"b\"]\n  n1 --> n2\n").size(),
      2u);
  EXPECT_EQ(
      mermaid_problems("flowchart TB\n  n1[\"a \" b\"]\n  n2[\"<i>c</i>\"]\n  n1 --> n2\n").size(),
      2u);
  for (const auto& name : all_configs()) {
    for (int depth = 1; depth <= 4; ++depth) {
      SCOPED_TRACE(name + " at depth " + std::to_string(depth));
      Options options;
      options.depth = depth;
      const Graph g = graph_of(name, options);
      const std::string text = to_mermaid(g);
      EXPECT_EQ(mermaid_problems(text), std::vector<std::string>{});
      const auto lines = lines_of(text);
      EXPECT_EQ(
          std::count_if(lines.begin(), lines.end(),
                        [](const std::string& l) { return l.find(" -.-> ") != std::string::npos; }),
          std::count_if(g.edges.begin(), g.edges.end(), [](const auto& e) { return e.residual; }));
    }
  }
}

TEST(Render, MermaidLlama3) {
  const std::string text = to_mermaid(graph_of("llama3-8b"));
  for (const char* line :
       {"  subgraph n0 [\"<b>language_model</b><br/>hidden_size 4096<br/>8.03B params\"]",
        "      subgraph n3 [\"<b>transformer</b><br/>218M params ×32 · layers 0-31\"]",
        "        n8(( ))", "        n9((+))", "  n8 -.-> n9", "  n9 -.-> n10", "  n1 --> n8",
        "  class n4 mixer"})
    EXPECT_NE(text.find(std::string(line) + "\n"), std::string::npos) << line;
}

TEST(Render, MermaidEscapesNames) {
  const std::string text = to_mermaid(graph_of("odd-names"));
  EXPECT_NE(text.find("[\"<b>say #quot;hi#quot;: transformer</b><br/>"), std::string::npos) << text;
  // "<", ">" and "&" as entity codes; a "#" too, so "#quot;" in a name stays as written.
  EXPECT_NE(text.find("[\"<b>x#60;y#62; #38; #35;quot; z: transformer</b><br/>"), std::string::npos)
      << text;
}

TEST(Render, SvgWithoutGraphvizSaysWhatToInstall) {
  Scratch scratch;  // an empty directory: no `dot` on the PATH
  const char* saved = std::getenv("PATH");
  const std::string path = saved ? saved : "";
  ASSERT_EQ(setenv("PATH", scratch.path().c_str(), 1), 0);
  std::string error;
  const auto svg = to_svg("digraph { a -> b; }\n", error);
  setenv("PATH", path.c_str(), 1);
  EXPECT_FALSE(svg);
  EXPECT_EQ(error,
            "SVG output needs Graphviz's `dot` program, which is not installed "
            "(Debian: apt-get install graphviz); --format dot or mermaid need nothing");
}

// A stand-in for Graphviz: a `dot` script first on PATH for one call of to_svg.
class FakeDot {
 public:
  explicit FakeDot(const std::string& script) {
    const std::string file = dir_.write("dot", "#!/bin/sh\n" + script + "\n");
    fs::permissions(file, fs::perms::owner_all);
    const char* saved = std::getenv("PATH");
    saved_ = saved ? saved : "";
    setenv("PATH", (dir_.path().string() + ":" + saved_).c_str(), 1);
  }
  ~FakeDot() { setenv("PATH", saved_.c_str(), 1); }
  FakeDot(const FakeDot&) = delete;
  FakeDot& operator=(const FakeDot&) = delete;

 private:
  Scratch dir_;
  std::string saved_;
};

// dot ran through a shell with TMPDIR in its command line: a TMPDIR holding `';touch PWNED;'`
// ran `touch PWNED`. dot now gets an argument vector, its input on a pipe, and no files.
TEST(Render, SvgIgnoresAHostileTmpdir) {
  Scratch scratch;
  const fs::path hostile = scratch.path() / "x';touch PWNED;'";
  fs::create_directories(hostile);
  const fs::path cwd = fs::current_path();
  fs::current_path(scratch.path());
  const char* saved = std::getenv("TMPDIR");
  const std::string old = saved ? saved : "";
  setenv("TMPDIR", hostile.c_str(), 1);
  std::string error;
  const auto svg = to_svg("digraph { a -> b; }\n", error);
  if (saved) setenv("TMPDIR", old.c_str(), 1); else unsetenv("TMPDIR");
  fs::current_path(cwd);
  ASSERT_TRUE(svg) << error;
  EXPECT_NE(svg->find("<svg"), std::string::npos);
  EXPECT_FALSE(fs::exists(scratch.path() / "PWNED"));
  EXPECT_TRUE(fs::is_empty(hostile));  // no temporary files, even for a moment's use
}

TEST(Render, SvgFromADotThatWritesNothingIsAnError) {
  FakeDot dot("cat >/dev/null; echo 'warning: nothing to draw' >&2; exit 0");
  std::string error;
  const auto svg = to_svg("digraph { a -> b; }\n", error);
  EXPECT_FALSE(svg);
  EXPECT_EQ(error, "dot wrote no SVG: warning: nothing to draw\n");
}

TEST(Render, SvgStopsADotThatTakesTooLong) {
  FakeDot dot("exec sleep 30");
  std::string error;
  const auto start = std::chrono::steady_clock::now();
  const auto svg = to_svg("digraph { a -> b; }\n", error, std::chrono::milliseconds(300));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(svg);
  EXPECT_EQ(error,
            "dot did not finish within 300 ms and was stopped; --format dot writes the graph "
            "without it");
}

// A dot that quits without reading its input (a large drawing fills the pipe) is an error,
// not a SIGPIPE that ends the program.
TEST(Render, SvgFromADotThatExitsWithoutReadingIsReported) {
  FakeDot dot("echo 'dot: cannot read' >&2; exit 3");
  std::string error;
  const auto svg = to_svg(std::string(1 << 22, ' ') + "digraph { a -> b; }\n", error);
  EXPECT_FALSE(svg);
  EXPECT_EQ(error, "dot failed: dot: cannot read\n");
}

TEST(Render, SvgReportsGraphvizErrors) {
  std::string error;
  const auto svg = to_svg("digraph { a -> ; }\n", error);
  EXPECT_FALSE(svg);
  EXPECT_EQ(error.rfind("dot failed: ", 0), 0u) << error;
  EXPECT_NE(error.find("syntax error"), std::string::npos) << error;
  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
    EXPECT_EQ(e.path().filename().string().rfind("blockc-" + std::to_string(::getpid()) + "-", 0),
              std::string::npos)
        << e.path();
}

}  // namespace
