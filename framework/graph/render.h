// Drawing an architecture graph: Graphviz DOT, Mermaid (rendered by GitHub in Markdown), and SVG
// through Graphviz's `dot` program.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "framework/graph/graph.h"

namespace blocks::graph {

std::string to_dot(const Graph& graph, const std::string& name);
std::string to_mermaid(const Graph& graph);
// How long `dot` may take before it is stopped: a large drawing takes a few seconds.
inline constexpr std::chrono::milliseconds kDotTimeout{60'000};
// Runs `dot -Tsvg` without a shell (run_program.h), the DOT on its stdin and the SVG from its
// stdout; nullopt with `error` set when Graphviz is missing, fails, times out or writes nothing.
std::optional<std::string> to_svg(const std::string& dot, std::string& error,
                                  std::chrono::milliseconds timeout = kDotTimeout);

}  // namespace blocks::graph
