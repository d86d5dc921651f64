#include "framework/config/diff.h"

#include <algorithm>
#include <map>

#include "framework/config/parameters.h"

namespace blocks::config {

namespace {

void collect(const Config& config, const std::string& path, Hint inherited, std::vector<Leaf>& out);

int rank(Hint h) {
  switch (h) {
    case Hint::architecture:
      return 0;
    case Hint::optional:
      return 1;
    case Hint::shortcut:
      return 2;
    case Hint::derived:
      return 3;
  }
  return 4;
}

// A field below an optional one is at most optional: the initialization of an optional
// weight does not change the architecture.
Hint weakest(Hint own, Hint inherited) { return rank(own) >= rank(inherited) ? own : inherited; }

// The hint the fields of `child` inherit from the field holding it. A config that declares
// parameters of its own (a linear, a weight, a norm) is a part of the model whatever the
// holding field says (`query` is optional to write, not optional to the architecture): its
// fields keep their own hints, so a linear's `bias`, which adds a parameter, is architecture
// and its initialization optional. Below a parameterless config (an initialization) the
// holding field's hint still caps them.
Hint inherited_by(const Config& child, Hint field_hint) {
  return child.parameters().empty() ? field_hint : Hint::architecture;
}

// Flattens a dumped JSON value below a field into leaves, recursing through nested configs.
void collect_field(const Config& config, const FieldInfo& f, const std::string& path,
                   Hint inherited, std::vector<Leaf>& out) {
  if (!f.present(config)) return;
  const Hint hint = weakest(f.hint, inherited);
  if (!f.children) {
    out.push_back({path, hint, f.dump(config)});
    return;
  }
  Json value = f.dump(config);
  if (value.is_null() || (value.is_array() && value.empty()) ||
      (value.is_object() && value.empty())) {
    out.push_back({path, hint, value});
    return;
  }
  f.children(const_cast<Config&>(config), [&](Config& child, const std::string& suffix,
                                              const std::string&) {
    const std::string child_path = path.substr(0, path.size() - f.name.size() - 1) + suffix;
    if (!child.type().kind.empty()) out.push_back({child_path + ".type", hint, child.type().name});
    collect(child, child_path, inherited_by(child, hint), out);
  });
}

void collect(const Config& config, const std::string& path, Hint inherited,
             std::vector<Leaf>& out) {
  for (const auto& f : config.type().fields)
    collect_field(config, f, path + "." + f.name, inherited, out);
}

// Whether some leaf lies below `path` (a field that is empty on one side and set on the
// other is listed by the leaves of the side that sets it).
bool has_leaves_below(const std::map<std::string, const Leaf*>& leaves, const std::string& path) {
  for (const char sep : {'.', '['}) {
    auto it = leaves.lower_bound(path + sep);
    if (it != leaves.end() && it->first.compare(0, path.size() + 1, path + sep) == 0) return true;
  }
  return false;
}

}  // namespace

std::vector<Leaf> leaves(const Document& document) {
  std::vector<Leaf> out;
  out.push_back({"version", Hint::architecture, document.version});
  if (document.model) {
    out.push_back({"model.type", Hint::architecture, document.model->type().name});
    collect(*document.model, "model", Hint::architecture, out);
  }
  return out;
}

std::vector<Difference> diff(const Document& a, const Document& b) {
  const auto la = leaves(a);
  const auto lb = leaves(b);
  std::map<std::string, const Leaf*> in_a, in_b;
  for (const auto& l : la) in_a[l.path] = &l;
  for (const auto& l : lb) in_b[l.path] = &l;
  std::vector<Difference> out;
  for (const auto& l : la) {
    auto it = in_b.find(l.path);
    if (it == in_b.end()) {
      if (!has_leaves_below(in_b, l.path))
        out.push_back({l.path, l.hint, l.value, nullptr, true, false});
    } else if (it->second->value != l.value) {
      out.push_back({l.path, l.hint, l.value, it->second->value, false, false});
    }
  }
  for (const auto& l : lb)
    if (!in_a.count(l.path) && !has_leaves_below(in_a, l.path))
      out.push_back({l.path, l.hint, nullptr, l.value, false, true});
  std::stable_sort(out.begin(), out.end(), [](const Difference& x, const Difference& y) {
    return rank(x.hint) < rank(y.hint);
  });
  return out;
}

std::string format_diff(const std::vector<Difference>& differences) {
  std::string out;
  std::string group;
  for (const auto& d : differences) {
    const std::string g(to_string(d.hint));
    if (g != group) {
      out += g + ":\n";
      group = g;
    }
    out += "  " + d.path + ": ";
    if (d.only_before)
      out += d.before.dump() + " -> (absent)\n";
    else if (d.only_after)
      out += "(absent) -> " + d.after.dump() + "\n";
    else
      out += d.before.dump() + " -> " + d.after.dump() + "\n";
  }
  return out;
}

}  // namespace blocks::config
