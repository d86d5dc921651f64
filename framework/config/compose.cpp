#include "framework/config/compose.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <unordered_map>

#include "framework/config/config.h"
#include "framework/io/files.h"

namespace blocks::config {

namespace fs = std::filesystem;

std::vector<PathPart> split_path(const std::string& path) {
  std::vector<PathPart> parts;
  PathPart cur;
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '.' || c == '[' || c == ']') {
      if (!cur.name.empty()) parts.push_back(cur);
      cur = {"", i + 1};
    } else {
      cur.name += c;
    }
  }
  if (!cur.name.empty()) parts.push_back(cur);
  return parts;
}

namespace {

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// An `extends` value: "FILE" or "FILE#PATH" (so FILE cannot hold '#').
struct Reference {
  std::string file;
  std::optional<std::string> path;

  explicit Reference(const std::string& text) {
    const size_t hash = text.find('#');
    file = text.substr(0, hash);
    if (hash != std::string::npos) path = text.substr(hash + 1);
  }
  // As the cycle message shows it: the file's name and the part mounted.
  std::string shown() const {
    return fs::path(file).filename().string() + (path ? "#" + *path : "");
  }
};

// Gives every value of a file read through `extends` the step that reached it, so that an
// error anywhere in it names the files that mounted it.
void stamp(Node& node, const std::shared_ptr<const Via>& via) {
  node.mark.via = via;
  for (auto& item : node.items) stamp(item, via);
  for (auto& e : node.entries) {
    e.key_mark.via = via;
    stamp(e.value, via);
  }
}

// Copies problems found while reading a mounted file, naming the chain that reached it.
void relay(const Diagnostics& found, const std::shared_ptr<const Via>& via, Diagnostics& out) {
  for (const auto& d : found.items()) {
    Mark mark = d.mark;
    if (mark.known() && !mark.via) mark.via = via;
    out.error(std::move(mark), d.path, d.message);
  }
}

// A composed file as a second `extends` reaches it: every mark whose chain began at the first
// mount (`before`) names the second (`now`) instead, as if the file had been composed again.
class Remount {
 public:
  Remount(std::shared_ptr<const Via> before, std::shared_ptr<const Via> now)
      : before_(std::move(before)), now_(std::move(now)) {}

  void apply(Node& node) {
    node.mark.via = map(node.mark.via);
    for (auto& item : node.items) apply(item);
    for (auto& e : node.entries) {
      e.key_mark.via = map(e.key_mark.via);
      apply(e.value);
    }
  }

 private:
  std::shared_ptr<const Via> map(const std::shared_ptr<const Via>& via) {
    if (!via) return via;
    if (via == before_) return now_;
    auto [it, fresh] = done_.try_emplace(via.get());
    if (!fresh) return it->second;
    std::shared_ptr<const Via> up = map(via->at.via);
    if (up == via->at.via) return it->second = via;  // not from the first mount
    Mark at = via->at;
    at.via = std::move(up);
    return it->second = std::make_shared<const Via>(Via{via->how, std::move(at)});
  }

  std::shared_ptr<const Via> before_, now_;
  std::unordered_map<const Via*, std::shared_ptr<const Via>> done_;
};

class Composer {
 public:
  Composer(const ComposeOptions& options, Diagnostics& diagnostics)
      : options_(options), diagnostics_(diagnostics) {}

  // How a file is read: the one loaded, the base of a whole file (its top-level `extends`),
  // the config holding a mounted FILE#PATH, or a fragment mounted whole below the top.
  enum class Use { entry, extended, part, fragment };

  struct Read {
    std::string path;
    Use use = Use::entry;
    Mark from;                 // the `extends` value naming the file
    std::string extends_path;  // its config path, for messages
    std::string shown;         // the file as the cycle message shows it
    std::string prefix;        // config path of the node a fragment is mounted at
  };

  // The file, with everything it mounts composed; null when it cannot be used.
  std::optional<Node> read(const Read& r) {
    std::error_code ec;
    const std::string key = fs::weakly_canonical(r.path, ec).string();
    if (std::any_of(chain_.begin(), chain_.end(), [&](const Link& l) { return l.key == key; })) {
      report_cycle(r, key);
      return std::nullopt;
    }
    std::shared_ptr<const Via> via;
    if (r.use != Use::entry) {
      // A base that cannot be read is reported where the including file names it.
      try {
        io::check_input(r.path);
      } catch (const io::FileError& e) {
        diagnostics_.error(r.from, r.extends_path, e.what());
        return std::nullopt;
      }
      via = std::make_shared<const Via>(
          Via{r.use == Use::extended ? "extended by" : "mounted from", r.from});
    }
    // Each file is read and composed once per document: a chain of files that each extend
    // the next twice took time exponential in its length. A file reached again is the first
    // composition with its marks naming the new chain; its problems were reported once.
    const std::string cache_key =
        key + '\n' + r.path + (r.use == Use::fragment ? "\nfragment at " + r.prefix : "");
    if (r.use != Use::entry) {
      auto hit = composed_.find(cache_key);
      if (hit != composed_.end()) {
        if (!hit->second.doc) return std::nullopt;
        Node doc = *hit->second.doc;
        Remount(hit->second.via, via).apply(doc);
        return doc;
      }
    }
    auto doc = compose_file(r, key, via);
    if (r.use != Use::entry) composed_[cache_key] = {doc, via};
    return doc;
  }

 private:
  // The file read, checked and composed, without the cache.
  std::optional<Node> compose_file(const Read& r, const std::string& key,
                                   const std::shared_ptr<const Via>& via) {
    Diagnostics found;
    auto loaded = load_file(r.path, found, options_.limits);
    relay(found, via, diagnostics_);
    if (!loaded) return std::nullopt;
    Node doc = std::move(*loaded);
    if (via) stamp(doc, via);
    const bool document = r.use != Use::fragment;
    if (document) {
      Diagnostics prepared;
      const bool ok = options_.prepare(doc, r.path, prepared);
      relay(prepared, via, diagnostics_);
      if (!ok) return std::nullopt;
    } else if (!usable_fragment(doc, r)) {
      return std::nullopt;
    }
    chain_.push_back({key, r.shown});
    const bool ok = compose(doc, r.path, document ? "" : r.prefix, document);
    chain_.pop_back();
    if (!ok) return std::nullopt;
    return doc;
  }

  struct Link {
    std::string key;    // canonical path
    std::string shown;  // as the cycle message shows it
  };

  // Composes the mounts inside `node` first, then its own: the keys a node writes override
  // its base after their own bases are merged. False when a mount failed; every mount is
  // tried, so that all of a file's problems are reported at once.
  bool compose(Node& node, const std::string& file, const std::string& path, bool top) {
    bool ok = true;
    for (size_t i = 0; i < node.items.size(); ++i)
      ok = compose(node.items[i], file, path + "[" + std::to_string(i) + "]", false) && ok;
    for (auto& e : node.entries)
      if (e.key != "extends") ok = compose(e.value, file, child_path(path, e.key), false) && ok;
    const Node* extends = node.is_mapping() ? node.find("extends") : nullptr;
    if (!extends) return ok;
    auto merged = bases(*extends, file, path, top);
    if (!merged) return false;
    node.erase("extends");
    merge_into(*merged, node);
    merged->mark = node.mark;  // the node is written here; its base is elsewhere
    node = std::move(*merged);
    return ok;
  }

  // The bases an `extends` value names, merged in order.
  std::optional<Node> bases(const Node& extends, const std::string& file, const std::string& path,
                            bool top) {
    std::vector<const Node*> refs;
    if (extends.is_sequence()) {
      for (const auto& b : extends.items) refs.push_back(&b);
    } else {
      refs.push_back(&extends);
    }
    const std::string extends_path = child_path(path, "extends");
    Node merged = Node::mapping(extends.mark);
    bool ok = true;
    for (const Node* ref : refs) {
      if (!ref->is_scalar()) {
        diagnostics_.error(ref->mark, extends_path,
                           "expected a file path, found " + ref->describe());
        ok = false;
        continue;
      }
      auto base = mount(*ref, file, path, top);
      if (!base) {
        ok = false;
        continue;
      }
      if (ref == refs.front())
        merged = std::move(*base);
      else
        merge_into(merged, *base);
    }
    if (!ok) return std::nullopt;
    return merged;
  }

  // What one `extends` value names: a whole file, or the mapping at PATH inside one.
  std::optional<Node> mount(const Node& value, const std::string& file, const std::string& path,
                            bool top) {
    const std::string extends_path = child_path(path, "extends");
    const Reference ref(value.text);
    std::string problem;
    if (ref.file.empty())
      problem = "expected FILE or FILE#PATH, found " + value.describe();
    else if (ref.path && split_path(*ref.path).empty())
      problem = "'" + value.text + "' names no path after '#' (e.g. '" + ref.file + "#model')";
    else if (ref.path && top)
      problem = "the top of a file extends whole files; mount '" + value.text +
                "' at the node it belongs to (e.g. model: {extends: \"" + value.text + "\"})";
    if (!problem.empty()) {
      diagnostics_.error(value.mark, extends_path, problem);
      return std::nullopt;
    }
    Read r;
    r.path = (fs::path(file).parent_path() / ref.file).string();
    r.use = top ? Use::extended : ref.path ? Use::part : Use::fragment;
    r.from = value.mark;
    r.extends_path = extends_path;
    r.shown = ref.shown();
    r.prefix = path;
    auto base = read(r);
    if (!base || !ref.path) return base;
    return part(*base, ref, value.mark, extends_path);
  }

  // The mapping at `ref.path` inside a composed config.
  std::optional<Node> part(const Node& doc, const Reference& ref, const Mark& at,
                           const std::string& extends_path) {
    const Node* cur = &doc;
    std::string walked;  // the part of the path followed so far
    auto fail = [&](const std::string& message) {
      diagnostics_.error(at, extends_path, message);
      return std::nullopt;
    };
    const std::string where = " of " + ref.file;
    for (const PathPart& p : split_path(*ref.path)) {
      const std::string place = walked.empty() ? "at the top" : "in '" + walked + "'";
      if (cur->is_mapping()) {
        const Node* next = cur->find(p.name);
        if (!next) return fail(missing_key(*cur, p.name, place + where));
        cur = next;
      } else if (cur->is_sequence()) {
        const auto k = parse_integer(p.name);
        if (!k || *k < 0 || static_cast<size_t>(*k) >= cur->items.size())
          return fail("no item '" + p.name + "' " + place + where + " (the list has " +
                      std::to_string(cur->items.size()) + " items)");
        cur = &cur->items[static_cast<size_t>(*k)];
      } else {
        return fail("'" + walked + "'" + where + " is " + cur->describe() + ", which has no '" +
                    p.name + "'");
      }
      walked = ref.path->substr(0, p.offset + p.name.size());
    }
    if (!cur->is_mapping())
      return fail("'" + walked + "'" + where + " is " + cur->describe() +
                  ", not a mapping: only a mapping can be mounted");
    return *cur;
  }

  static std::string missing_key(const Node& map, const std::string& key, const std::string& here) {
    std::vector<std::string> keys;
    for (const auto& e : map.entries) keys.push_back(e.key);
    std::string message = "no '" + key + "' " + here;
    if (auto guess = did_you_mean(key, keys)) message += "; did you mean '" + *guess + "'?";
    return message + (keys.empty() ? " (it is empty)" : " (keys there: " + join(keys) + ")");
  }

  bool usable_fragment(Node& doc, const Read& r) {
    if (doc.is_null()) doc = Node::mapping(doc.mark);
    std::string problem;
    if (!doc.is_mapping())
      problem = "'" + r.shown + "' holds " + doc.describe() + ", not a mapping to mount";
    else if (doc.find("version"))
      problem = "'" + r.shown +
                "' is a whole config (it has 'version'); name the part to mount, e.g. '" + r.shown +
                "#model'";
    if (problem.empty()) return true;
    diagnostics_.error(r.from, r.extends_path, problem);
    return false;
  }

  void report_cycle(const Read& r, const std::string& key) {
    std::vector<std::string> cycle;
    bool in = false;
    for (const auto& l : chain_) {
      in = in || l.key == key;
      if (in) cycle.push_back(l.shown);
    }
    cycle.push_back(r.shown);
    Mark at = r.from;
    at.via = nullptr;  // the message names the chain itself
    diagnostics_.error(at, r.extends_path, "include cycle: " + join(cycle, " -> "));
  }

  // A file as first composed (null when it could not be used), and the mount that reached it.
  struct Composed {
    std::optional<Node> doc;
    std::shared_ptr<const Via> via;
  };

  const ComposeOptions& options_;
  Diagnostics& diagnostics_;
  std::vector<Link> chain_;  // files being composed, for cycle detection
  // By canonical path, the path as written, and (for fragments) the node mounted at.
  std::unordered_map<std::string, Composed> composed_;
};

void find_extends(const Node& node, const std::string& path, Diagnostics& diagnostics) {
  for (size_t i = 0; i < node.items.size(); ++i)
    find_extends(node.items[i], path + "[" + std::to_string(i) + "]", diagnostics);
  for (const auto& e : node.entries) {
    if (e.key == "extends")
      diagnostics.error(e.value.mark, child_path(path, e.key),
                        "'extends' needs a file on disk; load this document with load_document");
    else
      find_extends(e.value, child_path(path, e.key), diagnostics);
  }
}

}  // namespace

std::optional<Node> compose_document(const std::string& path, const ComposeOptions& options,
                                     Diagnostics& diagnostics) {
  Composer composer(options, diagnostics);
  Composer::Read entry;
  entry.path = path;
  entry.from = Mark{source_name(path), 1, 1};
  entry.shown = fs::path(path).filename().string();
  return composer.read(entry);
}

bool check_no_extends(const Node& document, Diagnostics& diagnostics) {
  const size_t before = diagnostics.size();
  find_extends(document, "", diagnostics);
  return diagnostics.size() == before;
}

}  // namespace blocks::config
