#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "blocks/heads/head.h"
#include "blocks/linear/linear.h"
#include "blocks/mixers/attention.h"
#include "blocks/mixers/mamba.h"
#include "blocks/mlps/moe.h"
#include "blocks/models/summary.h"
#include "framework/config/parameters.h"
#include "framework/config/resolve.h"

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

// Configs by path, and how many module instances each stands for.
struct Tree {
  std::map<std::string, const config::Config*> configs;
  std::map<std::string, int64_t> copies;
};

Tree config_tree(const config::Config& model) {
  Tree tree;
  config::count_parameters(model, [&](const config::Config& c, const std::string& path,
                                      int64_t copies) {
    tree.configs[path] = &c;
    tree.copies[path] = copies;
  });
  return tree;
}

std::string parent_of(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

// Multiply-accumulates per token of one record, as a matrix the token passes through.
double record_macs(const nn::ParameterRecord& record, const Tree& tree) {
  auto it = tree.configs.find(record.config_path);
  if (it == tree.configs.end()) return 0;
  if (const auto* linear = dynamic_cast<const LinearConfig*>(it->second)) {
    if (record.declared_name == "bias") return 0;
    const double per_copy = static_cast<double>(record.numel()) / linear->copies;
    if (linear->copies == 1) return per_copy;
    auto parent = tree.configs.find(parent_of(record.config_path));
    const auto* moe = parent == tree.configs.end() ? nullptr
                                                   : dynamic_cast<const MoeConfig*>(parent->second);
    return per_copy * (moe ? moe->top_k : linear->copies);
  }
  // The untied output matrix; Mamba's depthwise convolution (its weight, not its bias).
  auto parent = tree.configs.find(parent_of(record.config_path));
  if (parent == tree.configs.end()) return 0;
  if (const auto* head = dynamic_cast<const HeadConfig*>(parent->second))
    return head->output && it->second == &*head->output ? static_cast<double>(record.numel()) : 0;
  if (const auto* mamba = dynamic_cast<const MambaConfig*>(parent->second))
    return it->second == &mamba->conv && record.declared_name == "weight"
               ? static_cast<double>(record.numel())
               : 0;
  return 0;
}

// Attention scores and the weighted sum of values (2 x context x width MACs each token),
// Mamba's scan (about 3 x inner x state MACs), and a tied head's product with the embeddings.
double extra_macs(const Tree& tree, int64_t context) {
  double macs = 0;
  for (const auto& [path, config] : tree.configs) {
    const double copies = static_cast<double>(tree.copies.at(path));
    if (const auto* a = dynamic_cast<const AttentionConfig*>(config)) {
      const int64_t span = a->window_size ? std::min(*a->window_size, context) : context;
      macs += copies * 2.0 * span * a->inner_width();
    } else if (const auto* m = dynamic_cast<const MambaConfig*>(config)) {
      macs += copies * 3.0 * m->inner * m->state_size;
    } else if (const auto* h = dynamic_cast<const HeadConfig*>(config)) {
      if (h->tied) {
        auto word = tree.configs.find(parent_of(path) + ".embeddings.word");
        if (word != tree.configs.end())
          for (const auto& p : word->second->parameters()) macs += copies * p.numel();
      }
    }
  }
  return macs;
}

struct Node {
  int64_t parameters = 0, trainable = 0;
  std::set<double> lr_scales;
};

}  // namespace

SummaryTotals summary_totals(const config::Config& model, const nn::ParameterTable& table,
                             int64_t context) {
  const Tree tree = config_tree(model);
  SummaryTotals totals;
  double macs = extra_macs(tree, context);
  for (const auto& record : table) {
    totals.parameters += record.numel();
    if (record.trainable) totals.trainable += record.numel();
    ++totals.tensors;
    macs += record_macs(record, tree);
  }
  totals.flops_per_token = 2 * macs;
  return totals;
}

std::string summarize(const config::Config& model, const nn::ParameterTable& table,
                      const SummaryOptions& options) {
  const Tree tree = config_tree(model);
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
    const int64_t copies = tree.copies.count(path) ? tree.copies.at(path) : 1;
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
