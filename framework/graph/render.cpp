#include "framework/graph/render.h"

#include <cerrno>
#include <cstring>
#include <sstream>

#include "framework/graph/run_program.h"
#include "framework/io/markup.h"

namespace blocks::graph {

namespace {


struct Style {
  const char* fill;
  const char* border;
};

// Colours by what a node is, so mixers, MLPs and norms read apart at a glance.
Style style_of(const Node& n) {
  if (n.frozen) return {"#e3e3e3", "#9a9a9a"};
  if (n.category == "mixer") return {"#dbe9f6", "#4a78a8"};
  if (n.category == "mlp") return {"#dff0d8", "#4f8a3c"};
  if (n.category == "normalization") return {"#f4f4f4", "#8c8c8c"};
  if (n.category == "embeddings" || n.category == "head") return {"#fcf3cf", "#b7950b"};
  if (n.category == "linear" || n.category == "weight") return {"#ffffff", "#7f8c8d"};
  return {"#fdfefe", "#5d6d7e"};
}

// The facts under a node's title: hyperparameters, then size, copies and badges; a layer
// order's lines as they are.
std::vector<std::string> facts(const Node& n) {
  if (n.kind == NodeKind::order) return n.details;
  std::vector<std::string> lines;
  std::string line;
  for (size_t i = 0; i < n.details.size(); ++i) {
    if (!line.empty()) line += " · ";
    line += n.details[i];
    if (line.size() > 34 || i + 1 == n.details.size()) {
      lines.push_back(line);
      line.clear();
    }
  }
  std::string size;
  if (n.parameters > 0) size = format_count(n.parameters) + " params";
  if (n.occurrences > 1 && !n.shared)
    size += (size.empty() ? "" : " ") + std::string("×") + std::to_string(n.occurrences);
  if (!n.layers.empty()) size += (size.empty() ? "" : " · ") + n.layers;
  if (!size.empty()) lines.push_back(size);
  std::string badges;
  if (n.shared) badges += "shared weights ";
  if (n.frozen) badges += "frozen ";
  if (n.partly_frozen) badges += "partly frozen ";
  // Learning-rate scales other than 1 (products down the tree) show where they apply.
  if (n.parameters > 0 && !n.frozen && (n.lr_min != 1 || n.lr_max != 1)) {
    char lr[48];
    if (n.lr_min == n.lr_max)
      std::snprintf(lr, sizeof lr, "lr ×%g ", n.lr_min);
    else
      std::snprintf(lr, sizeof lr, "lr ×%g-%g ", n.lr_min, n.lr_max);
    badges += lr;
  }
  if (n.lora) badges += "LoRA ";
  if (!badges.empty()) lines.push_back(badges.substr(0, badges.size() - 1));
  return lines;
}

std::string dot_label(const Node& n) {
  std::string label = "<<b>" + io::escape_markup(n.title) + "</b>";
  for (const auto& line : facts(n))
    label += "<br/><font point-size=\"9\">" + io::escape_markup(line) + "</font>";
  return label + ">";
}

void dot_node(const Graph& g, const Node& n, int indent, std::ostringstream& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (n.kind == NodeKind::input) {
    out << pad << "n" << n.id << " [shape=point, width=0.08];\n";
    return;
  }
  if (n.kind == NodeKind::sum) {
    out << pad << "n" << n.id
        << " [shape=circle, label=\"+\", width=0.28, fixedsize=true, fontsize=12];\n";
    return;
  }
  if (n.kind == NodeKind::order) {
    out << pad << "n" << n.id
        << " [shape=note, style=filled, fillcolor=\"#fef9e7\", color=\"#7d6608\", label="
        << dot_label(n) << "];\n";
    return;
  }
  const Style s = style_of(n);
  if (n.expanded && !n.children.empty()) {
    out << pad << "subgraph cluster_" << n.id << " {\n";
    out << pad << "  label=" << dot_label(n) << "; labeljust=l;\n";
    out << pad << "  style=\"rounded,filled\"; fillcolor=\"" << s.fill << "\"; color=\""
        << (n.lora ? "#c0392b" : s.border) << "\";" << (n.lora ? " penwidth=2;" : "") << "\n";
    for (int c : n.children) dot_node(g, g.nodes[static_cast<size_t>(c)], indent + 2, out);
    out << pad << "}\n";
    return;
  }
  out << pad << "n" << n.id << " [label=" << dot_label(n) << ", fillcolor=\"" << s.fill
      << "\", color=\"" << (n.lora ? "#c0392b" : s.border) << "\"" << (n.lora ? ", penwidth=2" : "")
      << (n.occurrences > 1 && !n.shared ? ", peripheries=2" : "") << "];\n";
}

// Text in a quoted Mermaid label: its quotes, HTML's specials and Mermaid's own entity mark
// as entity codes ("#quot;", "#60;"), so names show as written and the markup stays ours.
std::string escape_mermaid(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "#quot;";
        break;
      case '#':
        out += "#35;";
        break;
      case '&':
        out += "#38;";
        break;
      case '<':
        out += "#60;";
        break;
      case '>':
        out += "#62;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string mermaid_label(const Node& n) {
  std::string label = "<b>" + escape_mermaid(n.title) + "</b>";
  for (const auto& line : facts(n)) label += "<br/>" + escape_mermaid(line);
  return label;
}

void mermaid_node(const Graph& g, const Node& n, int indent, std::ostringstream& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  const std::string id = "n" + std::to_string(n.id);
  if (n.kind == NodeKind::input) {
    out << pad << id << "(( ))\n";
    return;
  }
  if (n.kind == NodeKind::sum) {
    out << pad << id << "((+))\n";
    return;
  }
  if (n.kind == NodeKind::order) {
    out << pad << id << "[/\"" << mermaid_label(n) << "\"/]\n";
    return;
  }
  if (n.expanded && !n.children.empty()) {
    out << pad << "subgraph " << id << " [\"" << mermaid_label(n) << "\"]\n";
    out << pad << "  direction TB\n";
    for (int c : n.children) mermaid_node(g, g.nodes[static_cast<size_t>(c)], indent + 2, out);
    out << pad << "end\n";
    return;
  }
  out << pad << id << "[\"" << mermaid_label(n) << "\"]\n";
}

}  // namespace

std::string to_dot(const Graph& graph, const std::string& name) {
  std::ostringstream out;
  out << "// Generated by blockc diagram from " << name << "\n";
  out << "digraph blocks {\n";
  out << "  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, nodesep=0.25, ranksep=0.3];\n";
  out << "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10, "
         "margin=\"0.12,0.05\"];\n";
  out << "  edge [color=\"#555555\", arrowsize=0.6];\n";
  dot_node(graph, graph.root(), 2, out);
  for (const auto& e : graph.edges) {
    out << "  n" << e.from << " -> n" << e.to;
    if (e.residual) out << " [style=dashed, color=\"#999999\", constraint=false]";
    if (e.reference)
      out << " [style=dotted, color=\"#7d6608\", arrowhead=open, label=<" << io::escape_markup(e.label)
          << ">, fontname=\"Helvetica\", fontsize=9]";
    if (e.hidden) out << " [style=invis]";
    if (!e.reference && !e.label.empty())
      out << " [label=<" << io::escape_markup(e.label) << ">, fontname=\"Helvetica\", fontsize=9]";
    out << ";\n";
  }
  out << "}\n";
  return out.str();
}

std::string to_mermaid(const Graph& graph) {
  std::ostringstream out;
  out << "flowchart TB\n";
  mermaid_node(graph, graph.root(), 2, out);
  for (const auto& e : graph.edges) {
    out << "  n" << e.from;
    if (e.reference)
      out << " -.->|\"" << escape_mermaid(e.label) << "\"| n";
    else if (e.hidden)
      out << " ~~~ n";
    else if (!e.label.empty())
      out << " -->|\"" << escape_mermaid(e.label) << "\"| n";
    else
      out << (e.residual ? " -.-> n" : " --> n");
    out << e.to << "\n";
  }
  // Colours by category, as in the DOT drawing.
  out << "  classDef mixer fill:#dbe9f6,stroke:#4a78a8\n"
         "  classDef mlp fill:#dff0d8,stroke:#4f8a3c\n"
         "  classDef norm fill:#f4f4f4,stroke:#8c8c8c\n"
         "  classDef io fill:#fcf3cf,stroke:#b7950b\n"
         "  classDef frozen fill:#e3e3e3,stroke:#9a9a9a\n";
  for (const auto& n : graph.nodes) {
    if (n.kind == NodeKind::input || n.kind == NodeKind::sum || (n.expanded && !n.children.empty()))
      continue;
    const char* cls = n.frozen                                             ? "frozen"
                      : n.category == "mixer"                              ? "mixer"
                      : n.category == "mlp"                                ? "mlp"
                      : n.category == "normalization"                      ? "norm"
                      : n.category == "embeddings" || n.category == "head" ? "io"
                                                                           : nullptr;
    if (cls) out << "  class n" << n.id << " " << cls << "\n";
  }
  return out.str();
}

std::optional<std::string> to_svg(const std::string& dot, std::string& error,
                                  std::chrono::milliseconds timeout) {
  const ProgramRun run = run_program({"dot", "-Tsvg"}, dot, timeout);
  if (run.start_error == ENOENT) {
    error =
        "SVG output needs Graphviz's `dot` program, which is not installed "
        "(Debian: apt-get install graphviz); --format dot or mermaid need nothing";
  } else if (run.start_error != 0) {
    error = std::string("cannot run Graphviz's `dot`: ") + std::strerror(run.start_error);
  } else if (run.timed_out) {
    error = "dot did not finish within " + std::to_string(timeout.count()) +
            " ms and was stopped; --format dot writes the graph without it";
  } else if (run.exit_code != 0) {
    error = "dot failed: " + (run.signal ? "ended by signal " + std::to_string(run.signal) + "; "
                                         : std::string()) +
            run.err;
  } else if (run.out.empty()) {
    error = "dot wrote no SVG" + (run.err.empty() ? std::string() : ": " + run.err);
  } else {
    return run.out;
  }
  return std::nullopt;
}

}  // namespace blocks::graph
