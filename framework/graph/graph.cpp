#include "framework/graph/graph.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "framework/config/parameters.h"

namespace blocks::graph {

using config::Config;
using config::FieldInfo;
using config::Json;

std::string format_ranges(const std::vector<int64_t>& positions) {
  std::vector<int64_t> p = positions;
  std::sort(p.begin(), p.end());
  std::string out;
  for (size_t i = 0; i < p.size();) {
    size_t j = i;
    while (j + 1 < p.size() && p[j + 1] == p[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(p[i]);
    if (j > i) out += (j == i + 1 ? ", " : "-") + std::to_string(p[j]);
    i = j + 1;
  }
  return out;
}

std::string format_count(int64_t count) {
  const char* units[] = {"", "K", "M", "B", "T"};
  double v = static_cast<double>(count);
  int u = 0;
  // Unit and decimals as rounded: 999,999 is "1.00M", not "1000K"; 9,999 is "10.0K".
  while (v >= 999.5 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buffer[32];
  if (u == 0)
    std::snprintf(buffer, sizeof buffer, "%lld", static_cast<long long>(count));
  else
    std::snprintf(buffer, sizeof buffer,
                  v < 9.995   ? "%.2f%s"
                  : v < 99.95 ? "%.1f%s"
                              : "%.0f%s",
                  v, units[u]);
  return buffer;
}

namespace {

struct Child {
  Config* config;
  std::string suffix;  // path suffix
  std::string name;    // field name or map key
  const FieldInfo* field;
};

std::vector<Child> children_of(const Config& c) {
  std::vector<Child> out;
  for (const auto& f : c.type().fields) {
    if (!f.children) continue;
    f.children(const_cast<Config&>(c),
               [&](Config& child, const std::string& suffix, const std::string& name) {
                 out.push_back({&child, suffix, name, &f});
               });
  }
  return out;
}

struct Stats {
  int64_t total = 0;
  int64_t trainable = 0;
  bool lora = false;
  double lr_min = 0, lr_max = 0;  // effective lr scales of the trainable parameters
  void add_lr(double lo, double hi) {
    lr_min = trainable_seen ? std::min(lr_min, lo) : lo;
    lr_max = trainable_seen ? std::max(lr_max, hi) : hi;
    trainable_seen = true;
  }
  bool trainable_seen = false;
};

std::string value_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%g", v.get<double>());
    return buffer;
  }
  return v.dump();
}

class Builder {
 public:
  explicit Builder(const Options& options) : options_(options) {}
  Graph graph;

  int add(const Config& c, const std::string& path, const std::string& title, int parent, int depth,
          bool in_sequence, int64_t copies) {
    const int id = static_cast<int>(graph.nodes.size());
    graph.nodes.emplace_back();
    {
      Node& n = graph.nodes.back();
      n.id = id;
      n.parent = parent;
      n.path = path;
      n.title = title;
      n.kind = kind_of(c);
      n.category = c.type().kind.empty() ? c.type().name : c.type().kind;
      const Stats& s = stats(c);
      n.parameters = s.total;
      n.copies = copies;
      n.frozen = s.total > 0 && s.trainable == 0;
      n.partly_frozen = s.trainable > 0 && s.trainable < s.total;
      n.lora = s.lora;
      n.lr_min = s.lr_min;
      n.lr_max = s.lr_max;
      n.details = details(c);
      n.expanded = depth < options_.depth || forced(path);
    }
    if (!graph.nodes[id].expanded) {
      graph.nodes[id].entry = graph.nodes[id].exit = id;
      return id;
    }
    const bool sequence = c.type().kind == "sequence";
    const int child_depth = sequence && in_sequence ? depth : depth + 1;
    const auto* layout = dynamic_cast<const config::Layout*>(&c);
    // Sequences are drawn as layers; other layouts (a resampler's `depth` layers) only copy
    // their children, and draw by their flow.
    const bool layered = layout && sequence;

    // Children that are nodes. In a sequence, siblings of one field that resolve alike and
    // have weights of their own at each position (the overrides a layer-ranged PEFT target or
    // an lr_scale makes) are one node standing for all their positions.
    struct Entry {
      Child child;
      std::vector<int64_t> positions;
      bool shared = false;
      std::string dump;
      int members = 1;
    };
    std::vector<Entry> entries;
    for (const Child& child : children_of(c)) {
      if (!is_node(*child.config)) continue;
      // Plain parameter holders (linears, weights) are the deepest level of detail.
      if (holds_parameters_only(*child.config) && options_.depth < 4 &&
          !forced(path + child.suffix))
        continue;
      Entry e{child, {}, false, {}, 1};
      if (layout) {
        e.positions = layout->positions_of(*child.config).list();
        e.shared = layout->shares_weights(*child.config);
        if (!e.shared) {
          e.dump = config::dump_fields(child.config->type(), *child.config, true).dump();
          auto same = std::find_if(entries.begin(), entries.end(), [&](const Entry& o) {
            return !o.shared && o.child.field == child.field && o.dump == e.dump;
          });
          if (same != entries.end()) {
            same->positions.insert(same->positions.end(), e.positions.begin(), e.positions.end());
            ++same->members;
            continue;
          }
        }
      }
      entries.push_back(std::move(e));
    }

    // Drawn children, by field name (flow) and in drawing order.
    std::vector<std::pair<Child, int>> drawn;
    std::vector<std::pair<int64_t, size_t>> order;
    std::vector<std::string> labels;
    for (Entry& e : entries) {
      const Child& child = e.child;
      std::sort(e.positions.begin(), e.positions.end());
      int64_t n_copies = copies;
      if (layout && !e.shared)
        n_copies = config::checked_multiply(n_copies, static_cast<int64_t>(e.positions.size()),
                                            "copies");
      const bool keyed = child.name != child.field->name;
      const std::string base = layered ? base_name(*layout, e.positions) : "";
      const std::string label = layered ? unique(label_of(child, base, e.positions), labels) : "";
      labels.push_back(label);
      // Layers split out of a named block (overrides) keep its name, primed: "m′". Other
      // merged map entries (overrides "16" to "31" of a repeat): their layers say where they are.
      std::string title = title_of(*child.config, child);
      if (keyed && !base.empty() && child.name != base && !child.config->type().kind.empty())
        title = label + ": " + child.config->type().name;
      else if (e.members > 1 && keyed && !child.config->type().kind.empty())
        title = child.config->type().name;
      const int child_id =
          add(*child.config, path + child.suffix, title, id, child_depth, sequence, n_copies);
      Node& cn = graph.nodes[child_id];
      if (layout) {
        cn.occurrences = static_cast<int64_t>(e.positions.size());
        cn.shared = e.shared;
      }
      if (layered) {
        cn.layers = (e.positions.size() == 1 ? "layer " : "layers ") + format_ranges(e.positions);
        cn.label = label;
      }
      order.emplace_back(e.positions.empty() ? 0 : e.positions.front(), drawn.size());
      drawn.emplace_back(child, child_id);
    }
    if (layered) std::stable_sort(order.begin(), order.end());
    std::vector<std::vector<int64_t>> positions;
    for (const Entry& e : entries) positions.push_back(e.positions);
    if (layered && drawn.size() > 1 && !in_runs(positions, order))
      layer_order(id, drawn, positions, order);
    else
      connect(c, id, drawn, order);
    return id;
  }

 private:
  // The name every position of an entry goes by before per-layer changes, or "" when they
  // have none or differ.
  static std::string base_name(const config::Layout& layout, const std::vector<int64_t>& at) {
    std::string name;
    for (size_t i = 0; i < at.size(); ++i) {
      const std::string n = layout.name_at(at[i]);
      if (n.empty() || (i > 0 && n != name)) return {};
      name = n;
    }
    return name;
  }

  // A sequence child's name in the layer order: a named block's name ("m"); layers split out
  // of one (overrides) that name primed ("m′"); else the map key, the field, or the position.
  static std::string label_of(const Child& child, const std::string& base,
                              const std::vector<int64_t>& positions) {
    const bool keyed = child.name != child.field->name;
    if (keyed && !base.empty()) return child.name == base ? base : base + "′";
    if (keyed) return child.name;
    if (child.suffix.empty() || child.suffix.front() != '[') return child.name;
    return positions.empty() ? child.name : std::to_string(positions.front());
  }

  static std::string unique(const std::string& label, const std::vector<std::string>& taken) {
    std::string out = label;
    for (int n = 2; std::find(taken.begin(), taken.end(), out) != taken.end(); ++n)
      out = label + std::to_string(n);
    return out;
  }

  // Whether the children, in the order of their first position, are runs that follow one
  // another (0-15, then 16-31), so that a chain of them is the layer order.
  static bool in_runs(const std::vector<std::vector<int64_t>>& positions,
                      const std::vector<std::pair<int64_t, size_t>>& order) {
    int64_t next = -1;
    for (const auto& [first, index] : order) {
      const auto& p = positions[index];
      if (p.empty()) continue;
      if (next >= 0 && p.front() != next) return false;
      for (size_t i = 1; i < p.size(); ++i)
        if (p[i] != p[i - 1] + 1) return false;
      next = p.back() + 1;
    }
    return true;
  }

  // The lines of a layer order: each layer's index and label, four to a line; a stretch that
  // repeats is listed once with how often and where ("×4: layers 0-31").
  static std::vector<std::string> order_lines(const std::vector<std::string>& at) {
    std::vector<std::string> lines, items;
    auto flush = [&] {
      for (size_t i = 0; i < items.size(); i += 4) {
        std::string line;
        for (size_t j = i; j < items.size() && j < i + 4; ++j)
          line += (j > i ? " · " : "") + items[j];
        lines.push_back(line);
      }
      items.clear();
    };
    const size_t n = at.size();
    for (size_t i = 0; i < n;) {
      size_t best_period = 1, best_count = 1;
      for (size_t period = 1; period <= 16 && i + period <= n; ++period) {
        size_t count = 1;
        while (i + (count + 1) * period <= n &&
               std::equal(at.begin() + i, at.begin() + i + period, at.begin() + i + count * period))
          ++count;
        if (count > 1 && count * period > best_count * best_period) {
          best_period = period;
          best_count = count;
        }
      }
      const size_t end = i + best_count * best_period;
      if (best_count > 1 && best_period == 1) {
        items.push_back(std::to_string(i) + "-" + std::to_string(end - 1) + " " + at[i]);
      } else if (best_count > 1) {
        flush();
        for (size_t j = i; j < i + best_period; ++j)
          items.push_back(std::to_string(j) + " " + at[j]);
        flush();
        lines.push_back("the " + std::to_string(best_period) + " above ×" +
                        std::to_string(best_count) + ": layers " + std::to_string(i) + "-" +
                        std::to_string(end - 1));
      } else {
        items.push_back(std::to_string(i) + " " + at[i]);
      }
      i = end;
    }
    flush();
    return lines;
  }

  // A sequence whose children are not runs in order: a `layer order` node first, pointing at
  // each child it uses, and an exit point below them; no arrow runs from child to child.
  void layer_order(int id, const std::vector<std::pair<Child, int>>& drawn,
                   const std::vector<std::vector<int64_t>>& positions,
                   const std::vector<std::pair<int64_t, size_t>>& order) {
    int64_t length = 0;
    for (const auto& p : positions)
      for (int64_t at : p) length = std::max(length, at + 1);
    std::vector<std::string> at(static_cast<size_t>(length), "?");
    bool primed = false;
    for (size_t i = 0; i < drawn.size(); ++i) {
      const std::string& label = graph.nodes[drawn[i].second].label;
      primed = primed || label.find("′") != std::string::npos;
      for (int64_t p : positions[i]) at[static_cast<size_t>(p)] = label;
    }
    const int order_id =
        add_point(id, NodeKind::order, "layer order (" + std::to_string(length) + " layers)");
    std::vector<std::string> lines = order_lines(at);
    if (primed) lines.push_back("′: that block with per-layer changes");
    graph.nodes[order_id].details = lines;
    for (const auto& [first, index] : order) {
      const int child_id = drawn[index].second;
      graph.nodes[id].children.push_back(child_id);
      graph.edges.push_back({.from = order_id,
                             .to = graph.nodes[child_id].entry,
                             .reference = true,
                             .label = graph.nodes[child_id].label});
    }
    const int exit_id = add_point(id, NodeKind::input, "output");
    for (const auto& [first, index] : order)
      graph.edges.push_back(
          {.from = graph.nodes[drawn[index].second].exit, .to = exit_id, .hidden = true});
    graph.nodes[id].entry = order_id;
    graph.nodes[id].exit = exit_id;
  }

  static NodeKind kind_of(const Config& c) {
    const std::string& kind = c.type().kind;
    if (kind == "model") return NodeKind::model;
    if (kind == "sequence") return NodeKind::sequence;
    if (kind == "block") return NodeKind::block;
    return NodeKind::layer;
  }

  bool is_node(const Config& c) {
    const std::string& kind = c.type().kind;
    return stats(c).total > 0 || kind == "model" || kind == "sequence" || kind == "block";
  }

  bool holds_parameters_only(const Config& c) {
    if (!c.type().kind.empty() || c.parameters().empty()) return false;
    for (const Child& child : children_of(c))
      if (is_node(*child.config)) return false;
    return true;
  }

  bool forced(const std::string& path) const {
    for (const auto& e : options_.expand) {
      if (e.compare(0, path.size(), path) == 0 &&
          (e.size() == path.size() || e[path.size()] == '.' || e[path.size()] == '['))
        return true;  // an ancestor of the path to expand
      if (path.compare(0, e.size(), e) == 0 &&
          (path.size() == e.size() || path[e.size()] == '.' || path[e.size()] == '['))
        return true;  // inside it
    }
    return false;
  }

  static std::string title_of(const Config& c, const Child& child) {
    const std::string& type = c.type().name;
    const bool keyed = child.name != child.field->name;  // a map entry: its key names it
    if (c.type().kind.empty()) return child.name;
    if (keyed) return child.name + ": " + type;
    if (child.name == type || child.name == "block" || child.name == "blocks" ||
        child.name == "overrides")
      return type;
    return child.name + ": " + type;
  }

  const Stats& stats(const Config& c) {
    auto it = stats_.find(&c);
    if (it != stats_.end()) return it->second;
    Stats s;
    for (const auto& p : c.parameters()) {
      s.total = config::checked_add(s.total, p.numel(), "parameters");
      if (p.trainable) {
        s.trainable = config::checked_add(s.trainable, p.numel(), "parameters");
        s.add_lr(p.lr_scale, p.lr_scale);
      }
      s.lora = s.lora || p.role != "base";
    }
    const auto* layout = dynamic_cast<const config::Layout*>(&c);
    for (const Child& child : children_of(c)) {
      const Stats& cs = stats(*child.config);
      int64_t n = 1;
      if (layout && !layout->shares_weights(*child.config))
        n = layout->positions_of(*child.config).count();
      s.total = config::checked_add(s.total, config::checked_multiply(cs.total, n, "parameters"),
                                    "parameters");
      s.trainable = config::checked_add(
          s.trainable, config::checked_multiply(cs.trainable, n, "parameters"), "parameters");
      s.lora = s.lora || cs.lora;
      if (cs.trainable_seen && n > 0) s.add_lr(cs.lr_min, cs.lr_max);
    }
    return stats_[&c] = s;
  }

  // Key hyperparameters: architecture fields that are required or differ from their default,
  // and the types of parameterless parts (rotary, peft).
  // Ranked: integers (sizes, counts), then words and switches, then the types of
  // parameterless parts, then other numbers; four at most, so nodes stay small.
  std::vector<std::string> details(const Config& c) {
    std::vector<std::pair<int, std::string>> ranked;
    for (const auto& f : c.type().fields) {
      if (f.children || f.hint != config::Hint::architecture || !f.present(c)) continue;
      const Json v = f.dump(c);
      if (v.is_null() || v.is_structured() || (!f.required && v == f.default_value())) continue;
      // A number the parent filled in (softmax_scale = 1/sqrt(head_size)) is derived, not chosen.
      if (v.is_number_float() && f.default_value().is_null()) continue;
      const int rank = v.is_number_integer() ? 0 : v.is_number_float() ? 3 : 1;
      ranked.emplace_back(rank, f.name + " " + value_text(v));
    }
    for (const Child& child : children_of(c)) {
      const Config& cc = *child.config;
      if (is_node(cc) || cc.type().kind.empty() || cc.type().name == "none") continue;
      if (cc.type().kind == "initialization") continue;
      ranked.emplace_back(2, child.name + " " + cc.type().name);
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (size_t i = 0; i < ranked.size() && i < 4; ++i) out.push_back(ranked[i].second);
    return out;
  }

  // Drawn children and the edges between them: the type's flow when it has one (residual
  // branches get an input point and a sum), else their order.
  void connect(const Config& c, int id, const std::vector<std::pair<Child, int>>& drawn,
               const std::vector<std::pair<int64_t, size_t>>& order) {
    const auto stages = c.flow();
    if (stages.empty()) {
      std::vector<int> sequence;
      for (const auto& [position, index] : order) sequence.push_back(drawn[index].second);
      chain(id, sequence);
      return;
    }
    auto by_field = [&](const std::string& name) -> int {
      for (const auto& [child, child_id] : drawn)
        if (child.field->name == name) return child_id;
      return -1;
    };
    auto link = [&](int from, int to, bool residual = false,
                    const std::map<std::string, std::string>* labels = nullptr) {
      if (from < 0) return;
      std::string label;
      if (labels)
        for (const auto& [child, child_id] : drawn)
          if (child_id == from)
            if (auto it = labels->find(child.name); it != labels->end()) label = it->second;
      graph.edges.push_back(
          {.from = graph.nodes[from].exit, .to = graph.nodes[to].entry, .residual = residual,
           .label = label});
    };
    std::vector<int> placed;
    std::vector<int> frontier;  // the nodes whose outputs flow on
    auto place = [&](int child_id) {
      graph.nodes[id].children.push_back(child_id);
      placed.push_back(child_id);
    };
    // A list field's items (a fusion encoder's connectors) run one after the other.
    auto run = [&](const std::vector<std::string>& fields,
                   const std::map<std::string, std::string>* labels = nullptr) {
      for (const auto& field : fields)
        for (const auto& [child, child_id] : drawn) {
          if (child.field->name != field) continue;
          place(child_id);
          for (int f : frontier) link(f, child_id, false, labels);
          frontier = {child_id};
        }
    };
    for (const auto& stage : stages) {
      size_t present = 0;
      for (const auto& field : stage.fields) present += by_field(field) >= 0 ? 1 : 0;
      if (present == 0) continue;
      // Branches need a point to start from: the skip path, or parallel parts.
      if (frontier.empty() && (stage.residual || (stage.parallel && present > 1)))
        frontier = {add_point(id, NodeKind::input, "input")};
      const std::vector<int> input = frontier;
      if (stage.parallel) {
        std::vector<int> outputs;
        for (const auto& field : stage.fields) {
          const int child_id = by_field(field);
          if (child_id < 0) continue;
          place(child_id);
          for (int f : input) link(f, child_id);
          outputs.push_back(child_id);
        }
        if (!outputs.empty()) frontier = outputs;
      } else {
        run(stage.fields, &stage.input_labels);
      }
      if (stage.residual && !input.empty()) {
        const int sum = add_point(id, NodeKind::sum, "+");
        for (int f : frontier) link(f, sum);
        if (frontier != input)
          for (int f : input) link(f, sum, true);
        frontier = {sum};
      }
      run(stage.after);
    }
    if (frontier.size() > 1) {  // parallel outputs at the end are summed (token + position)
      const int sum = add_point(id, NodeKind::sum, "+");
      for (int f : frontier) link(f, sum);
      frontier = {sum};
    }
    // Parts the flow does not name (Sub-LN norms used inside the branches) are drawn beside it.
    for (const auto& [child, child_id] : drawn)
      if (std::find(placed.begin(), placed.end(), child_id) == placed.end())
        graph.nodes[id].children.push_back(child_id);
    Node& me = graph.nodes[id];
    if (me.children.empty() || frontier.empty()) {
      me.expanded = false;
      me.entry = me.exit = id;
      return;
    }
    me.entry = graph.nodes[me.children.front()].entry;
    me.exit = graph.nodes[frontier.front()].exit;
  }

  // Children drawn one after the other.
  void chain(int id, const std::vector<int>& sequence) {
    for (size_t i = 0; i + 1 < sequence.size(); ++i)
      graph.edges.push_back({graph.nodes[sequence[i]].exit, graph.nodes[sequence[i + 1]].entry});
    Node& me = graph.nodes[id];
    me.children = sequence;
    if (sequence.empty()) {
      me.expanded = false;
      me.entry = me.exit = id;
      return;
    }
    me.entry = graph.nodes[sequence.front()].entry;
    me.exit = graph.nodes[sequence.back()].exit;
  }

  int add_point(int parent, NodeKind kind, const std::string& title) {
    const int id = static_cast<int>(graph.nodes.size());
    Node n;
    n.id = id;
    n.kind = kind;
    n.parent = parent;
    n.path = graph.nodes[parent].path;
    n.title = title;
    n.entry = n.exit = id;
    graph.nodes.push_back(std::move(n));
    graph.nodes[parent].children.push_back(id);
    return id;
  }

  const Options& options_;
  std::unordered_map<const Config*, Stats> stats_;
};

}  // namespace

Graph build_graph(const Config& model, const Options& options) {
  Builder b(options);
  b.add(model, "model", model.type().name, -1, 0, false, 1);
  return std::move(b.graph);
}

}  // namespace blocks::graph
