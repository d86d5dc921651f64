#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "blocks/models/summary.h"
#include "framework/config/parameters.h"

namespace blocks {

namespace {

std::string grouped(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string scaled(double n, const char* unit) {
  const char* prefixes[] = {"", " K", " M", " G", " T", " P"};
  int i = 0;
  while (n >= 1000 && i < 5) {
    n /= 1000;
    ++i;
  }
  char text[64];
  std::snprintf(text, sizeof text, "%.2f%s%s", n, prefixes[i], unit);
  return text;
}

// How many module instances each config path stands for (its weights' copies).
std::map<std::string, int64_t> copies_by_path(const config::Config& model) {
  std::map<std::string, int64_t> copies;
  config::count_parameters(
      model, [&](const config::Config&, const std::string& path, int64_t n) { copies[path] = n; });
  return copies;
}

std::string parent_of(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

struct Node {
  int64_t parameters = 0, trainable = 0;
  std::set<double> lr_scales;
};

}  // namespace

SummaryTotals summary_totals(const config::Config& model, const nn::ParameterTable& table,
                             int64_t context) {
  SummaryTotals totals;
  for (const auto& record : table) {
    totals.parameters += record.numel();
    if (record.trainable) totals.trainable += record.numel();
    ++totals.tensors;
  }
  totals.flops_per_token = config::count_forward_flops(model, {.context_length = context});
  return totals;
}

std::string summarize(const config::Config& model, const nn::ParameterTable& table,
                      const SummaryOptions& options) {
  const std::map<std::string, int64_t> copies_of = copies_by_path(model);
  std::map<std::string, Node> nodes;
  for (const auto& record : table) {
    for (std::string path = record.config_path; !path.empty(); path = parent_of(path)) {
      Node& node = nodes[path];
      node.parameters += record.numel();
      if (record.trainable) node.trainable += record.numel();
      node.lr_scales.insert(record.trainable ? record.lr_scale : 0.0);
    }
  }
  std::ostringstream out;
  if (!options.title.empty()) out << options.title << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-44s %7s %16s %16s %16s  %s\n", "config path", "copies",
                "each", "parameters", "trainable", "lr scale");
  out << line;
  for (const auto& [path, node] : nodes) {
    const int depth = static_cast<int>(std::count(path.begin(), path.end(), '.'));
    if (depth > options.depth) continue;
    const int64_t copies = copies_of.count(path) ? copies_of.at(path) : 1;
    const std::string name =
        std::string(2 * depth, ' ') + (depth == 0 ? path : path.substr(path.rfind('.') + 1));
    std::string lr = node.lr_scales.size() == 1 ? "" : "mixed";
    if (node.lr_scales.size() == 1) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", *node.lr_scales.begin());
      lr = *node.lr_scales.begin() == 0 ? "frozen" : text;
    }
    std::snprintf(line, sizeof line, "%-44s %7s %16s %16s %16s  %s\n", name.c_str(),
                  ("x" + std::to_string(copies)).c_str(), grouped(node.parameters / copies).c_str(),
                  grouped(node.parameters).c_str(), grouped(node.trainable).c_str(), lr.c_str());
    out << line;
  }
  const SummaryTotals totals = summary_totals(model, table, options.context);
  out << "\nparameters " << grouped(totals.parameters) << " (" << scaled(totals.parameters, "")
      << "), trainable " << grouped(totals.trainable) << ", tensors " << totals.tensors << "\n";
  int64_t bytes = 0;
  for (const auto& record : table) bytes += record.numel() * c10::elementSize(record.dtype);
  out << "bytes " << scaled(static_cast<double>(bytes), "B") << " as built ("
      << scaled(totals.parameters * 2.0, "B") << " in bfloat16)\n";
  out << "forward FLOPs per token at context " << options.context << ": "
      << scaled(totals.flops_per_token, "FLOP") << "\n";
  return out.str();
}

}  // namespace blocks
