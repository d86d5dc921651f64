// Generic parsing and dumping of declared configs, driven by their FieldInfo lists.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "framework/config/config.h"

namespace blocks::config {

std::string_view to_string(Hint hint) {
  switch (hint) {
    case Hint::architecture:
      return "architecture";
    case Hint::optional:
      return "optional";
    case Hint::derived:
      return "derived";
    case Hint::shortcut:
      return "shortcut";
  }
  return "?";
}

const Mark& Config::mark_of(std::string_view field) const {
  for (const auto& [name, m] : field_marks)
    if (name == field) return m;
  const size_t outer = field.find_first_of(".[");
  if (outer != std::string_view::npos) return mark_of(field.substr(0, outer));
  return mark;
}

const FieldInfo* TypeInfo::field(std::string_view name) const {
  for (const auto& f : fields)
    if (f.name == name) return &f;
  return nullptr;
}

std::vector<std::string> TypeInfo::field_names() const {
  std::vector<std::string> out;
  for (const auto& f : fields) out.push_back(f.name);
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += items[i];
  }
  return out;
}

namespace {
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::optional<std::string> did_you_mean(std::string_view word,
                                        const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string format_number(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, end);
}

bool check_range(const FieldInfo& f, double value, const Mark& mark, ParseContext& ctx) {
  if (!std::isfinite(value)) {
    ctx.error(mark, "must be a finite number, found " + format_number(value));
    return false;
  }
  if (f.min && value < *f.min) {
    ctx.error(mark, "must be >= " + format_number(*f.min) + ", found " + format_number(value));
    return false;
  }
  if (f.above && value <= *f.above) {
    ctx.error(mark, "must be > " + format_number(*f.above) + ", found " + format_number(value));
    return false;
  }
  if (f.max && value > *f.max) {
    ctx.error(mark, "must be <= " + format_number(*f.max) + ", found " + format_number(value));
    return false;
  }
  return true;
}

Json number_schema(const FieldInfo& f, const char* type) {
  Json s = {{"type", type}};
  if (f.min) s["minimum"] = *f.min;
  if (f.above) s["exclusiveMinimum"] = *f.above;
  if (f.max) s["maximum"] = *f.max;
  return s;
}

std::optional<int64_t> parse_integer(std::string_view text) {
  int64_t v = 0;
  const char* first = text.data();
  if (!text.empty() && text[0] == '+') ++first;
  auto [end, ec] = std::from_chars(first, text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || first == end) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view text) {
  double v = 0;
  const char* first = text.data();
  if (!text.empty() && text[0] == '+') ++first;
  auto [end, ec] = std::from_chars(first, text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || first == end) return std::nullopt;
  return v;
}

bool Codec<std::string>::parse(const Node& n, std::string& out, ParseContext& ctx,
                               const FieldInfo& f) {
  if (!n.is_scalar()) {
    ctx.error(n.mark, "expected a string, found " + n.describe());
    return false;
  }
  if (!f.choices.empty() &&
      std::find(f.choices.begin(), f.choices.end(), n.text) == f.choices.end()) {
    std::string message = "unknown value '" + n.text + "'";
    if (auto guess = did_you_mean(n.text, f.choices)) message += "; did you mean '" + *guess + "'?";
    ctx.error(n.mark, message + " (valid: " + join(f.choices) + ")");
    return false;
  }
  out = n.text;
  return true;
}

Json Codec<std::string>::schema(SchemaBuilder&, const FieldInfo& f) {
  Json s = {{"type", "string"}};
  if (!f.choices.empty()) s["enum"] = f.choices;
  return s;
}

void parse_fields(const TypeInfo& info, Config& config, const Node& node, ParseContext& ctx,
                  std::string_view skip) {
  config.mark = node.mark;
  config.field_marks.clear();
  config.parse_failed = false;
  std::vector<std::string> suggested;  // fields named by a "did you mean"
  for (const auto& e : node.entries) {
    if (!skip.empty() && e.key == skip) continue;
    const FieldInfo* f = info.field(e.key);
    if (!f) {
      std::string what = info.kind.empty() ? info.name : info.name + " " + info.kind;
      std::string message = "unknown field '" + e.key + "' in " + what;
      auto names = info.field_names();
      if (auto guess = did_you_mean(e.key, names)) {
        message += "; did you mean '" + *guess + "'?";
        suggested.push_back(*guess);
      }
      ParseContext::Scope scope(ctx, "");
      ctx.error(e.key_mark, message + " (valid: " + join(names) + ")");
      continue;
    }
    ParseContext::Scope scope(ctx, "." + e.key);
    config.field_marks.emplace_back(f->name, e.value.mark);
    for (size_t i = 0; i < e.value.items.size(); ++i)
      config.field_marks.emplace_back(f->name + "[" + std::to_string(i) + "]",
                                      e.value.items[i].mark);
    // Keys of a mapping field, so that a rule about one key reports at its line.
    for (const auto& entry : e.value.entries)
      config.field_marks.emplace_back(f->name + "." + entry.key, entry.key_mark);
    if (f->required && e.value.is_null()) continue;  // reported once, as missing, below
    const size_t before = ctx.diagnostics().size();
    f->parse(*f, config, e.value, ctx);
    // A nested config that failed flags itself; this one failed when a value of its own did,
    // or a slot it needs stayed empty.
    if (ctx.diagnostics().size() != before && (!f->children || f->empty(config)))
      config.parse_failed = true;
  }
  for (const auto& f : info.fields) {
    if (!f.required) continue;
    const Node* v = node.find(f.name);
    if (!v || v->is_null()) {
      config.parse_failed = true;
      // A misspelt required field is one mistake: the "did you mean" already names it.
      if (!v && std::find(suggested.begin(), suggested.end(), f.name) != suggested.end()) continue;
      ctx.error(v ? v->mark : node.mark, "missing required field '" + f.name + "'");
    }
  }
}

Json dump_fields(const TypeInfo& info, const Config& config, bool with_type) {
  Json out = Json::object();
  if (with_type) out["type"] = info.name;
  for (const auto& f : info.fields)
    if (f.present(config)) out[f.name] = f.dump(config);
  return out;
}

std::unique_ptr<Config> parse_dynamic(std::string_view kind, const Node& node, ParseContext& ctx) {
  if (!node.is_mapping()) {
    ctx.error(node.mark, "expected a " + std::string(kind) + " mapping with a 'type', found " +
                             node.describe());
    return nullptr;
  }
  std::vector<std::string> valid;
  for (const TypeInfo* t : ctx.registry().types_for(kind)) valid.push_back(t->name);
  const Node* type = node.find("type");
  if (!type || !type->is_scalar()) {
    ctx.error(type ? type->mark : node.mark,
              "missing 'type' of " + std::string(kind) + " (valid: " + join(valid) + ")");
    return nullptr;
  }
  const TypeInfo* info = ctx.registry().find(kind, type->text);
  if (!info) {
    ParseContext::Scope scope(ctx, ".type");
    std::string message = "unknown " + std::string(kind) + " type '" + type->text + "'";
    if (auto guess = did_you_mean(type->text, valid)) message += "; did you mean '" + *guess + "'?";
    ctx.error(type->mark, message + " (valid: " + join(valid) + ")");
    return nullptr;
  }
  std::unique_ptr<Config> config = info->make();
  if (info->preprocess) {
    Node copy = node;
    info->preprocess(copy, ctx);
    parse_fields(*info, *config, copy, ctx, "type");
  } else {
    parse_fields(*info, *config, node, ctx, "type");
  }
  return config;
}

}  // namespace blocks::config
