// Drawing an architecture graph: Graphviz DOT, Mermaid (rendered by GitHub in Markdown), and SVG
// through Graphviz's `dot` program.
#pragma once

#include <optional>
#include <string>

#include "framework/graph/graph.h"

namespace blocks::graph {

std::string to_dot(const Graph& graph, const std::string& name);
std::string to_mermaid(const Graph& graph);
// Runs `dot -Tsvg`; nullopt with `error` set when Graphviz is missing or fails.
std::optional<std::string> to_svg(const std::string& dot, std::string& error);

}  // namespace blocks::graph
