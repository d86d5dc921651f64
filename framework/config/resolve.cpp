#include "framework/config/resolve.h"

#include <algorithm>

namespace blocks::config {

std::string ResolveContext::path_of(std::string_view field) const {
  if (field.empty()) return path;
  return path.empty() ? std::string(field) : path + "." + std::string(field);
}

void ResolveContext::open_model_scope() {
  ResolveContext fresh;
  fresh.state = state;
  fresh.path = std::move(path);
  fresh.mark = mark;
  fresh.lr_scale = lr_scale;
  fresh.frozen = frozen;
  // The model's own kind and type stay matchable names (`language_model`); the parent's field
  // names do not reach into it.
  if (names.size() >= 2) fresh.names.assign(names.end() - 2, names.end());
  *this = std::move(fresh);
}

void ResolveContext::error(const Config& at, std::string_view field, std::string message) const {
  Mark m = at.mark_of(field);
  if (!m.known()) m = mark;
  state->diagnostics->error(m, path_of(field), std::move(message));
}

int64_t ResolveContext::product(const Config& at, std::string_view field, int64_t a,
                               int64_t b) const {
  if (auto out = multiply(a, b)) return *out;
  error(at, field,
        std::to_string(a) + " x " + std::to_string(b) + " is more than " +
            std::string(kCountLimit));
  return 0;
}

bool LinearTarget::covers(const ResolveContext& ctx) const {
  if (std::find(ctx.names.begin(), ctx.names.end(), name) == ctx.names.end()) return false;
  if (!layers) return true;
  if (!ctx.layers || ctx.layers->empty()) return false;
  return ctx.layers->front() >= layers->first && ctx.layers->back() <= layers->second;
}

namespace {

std::string extend(const std::string& path, const std::string& suffix) {
  if (path.empty() && !suffix.empty() && suffix[0] == '.') return suffix.substr(1);
  return path + suffix;
}

void walk(Config& config, ResolveContext ctx) {
  if (config.mark.known()) ctx.mark = config.mark;
  // Below a config that failed to parse, defaults are still filled but nothing is reported:
  // its problems would be knock-on effects of the parse error already reported.
  Diagnostics quiet;
  Diagnostics* reporting = ctx.state->diagnostics;
  if (config.parse_failed) ctx.state->diagnostics = &quiet;
  const TypeInfo& info = config.type();
  if (!info.kind.empty()) ctx.names.push_back(info.kind);
  ctx.names.push_back(info.name);
  if (ctx.peft_active)
    for (auto& t : ctx.scope->full_training)
      if (t.covers(ctx)) {
        ++t.matches;
        ctx.peft_active = false;
      }
  config.resolve(ctx);
  const auto* hook = dynamic_cast<const ChildContexts*>(&config);
  for (const auto& f : info.fields) {
    if (!f.children) continue;
    f.children(config, [&](Config& child, const std::string& suffix, const std::string& name) {
      ResolveContext sub = ctx;
      sub.path = extend(ctx.path, suffix);
      sub.names.push_back(name);
      if (hook) hook->enter(child, sub);
      walk(child, std::move(sub));
    });
  }
  config.finish(ctx);
  config.validate(ctx);
  ctx.state->diagnostics = reporting;
}

void visit_all(Config& config, const std::string& path,
               const std::function<void(Config&, const std::string&)>& visit) {
  visit(config, path);
  for (const auto& f : config.type().fields) {
    if (!f.children) continue;
    f.children(config, [&](Config& child, const std::string& suffix, const std::string&) {
      visit_all(child, extend(path, suffix), visit);
    });
  }
}

}  // namespace

void for_each_config(Config& root, const std::string& root_path,
                     const std::function<void(Config&, const std::string& path)>& visit) {
  visit_all(root, root_path, visit);
}

void resolve_tree(Config& root, Diagnostics& diagnostics, const std::string& root_path,
                  const LoadLimits& limits) {
  ResolveContext ctx;
  ctx.state = std::make_shared<ResolveState>();
  ctx.state->diagnostics = &diagnostics;
  ctx.state->max_layers = limits.max_layers;
  ctx.path = root_path;
  walk(root, std::move(ctx));
}

}  // namespace blocks::config
