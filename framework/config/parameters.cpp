#include "framework/config/parameters.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace blocks::config {

std::vector<ParameterShape> Config::parameters() const { return {}; }
std::vector<FlowStage> Config::flow() const { return {}; }
double Config::forward_flops(const FlopContext&) const { return matrix_flops(parameters()); }

int64_t ParameterShape::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (auto product = multiply(n, d)) {
      n = *product;
      continue;
    }
    std::ostringstream dims;
    for (size_t i = 0; i < shape.size(); ++i) dims << (i ? " x " : "") << shape[i];
    throw SizeOverflow({}, {},
                       "a tensor of " + dims.str() + " elements is more than " +
                           std::string(kCountLimit));
  }
  return n;
}

int64_t Positions::count() const {
  int64_t n = 0;
  for (const Run& r : runs) n = checked_add(n, r.count, "positions");
  return n;
}

int64_t Positions::front() const {
  int64_t out = runs.front().first;
  for (const Run& r : runs) out = std::min(out, r.first);
  return out;
}

int64_t Positions::back() const {
  int64_t out = runs.front().last();
  for (const Run& r : runs) out = std::max(out, r.last());
  return out;
}

std::vector<int64_t> Positions::list() const {
  std::vector<int64_t> out;
  for (const Run& r : runs)
    for (int64_t i = 0; i < r.count; ++i) out.push_back(r.first + i * r.step);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// A SizeOverflow from arithmetic that knew no config, given the config and parameter it was for.
[[noreturn]] void at_config(const SizeOverflow& e, const Config& config, const std::string& path) {
  throw SizeOverflow(path, config.mark, e.message());
}

void walk(const Config& config, const std::string& path, int64_t copies, ParameterCount& count,
          const std::function<void(const Config&, const std::string&, int64_t)>& visit) {
  if (visit) visit(config, path, copies);
  for (const auto& p : config.parameters()) {
    try {
      const int64_t n = checked_multiply(p.numel(), copies, "its elements times its copies");
      count.total = checked_add(count.total, n, "the parameter count up to here");
      if (p.trainable) count.trainable = checked_add(count.trainable, n, "the trainable count");
      count.tensors = checked_add(count.tensors, copies, "the tensor count");
    } catch (const SizeOverflow& e) {
      if (!e.path().empty()) throw;
      at_config(e, config, path + "." + p.name);
    }
  }
  const auto* layout = dynamic_cast<const Layout*>(&config);
  for (const auto& f : config.type().fields) {
    if (!f.children) continue;
    f.children(const_cast<Config&>(config),
               [&](Config& child, const std::string& suffix, const std::string&) {
                 int64_t n = copies;
                 if (layout && !layout->shares_weights(child)) {
                   try {
                     n = checked_multiply(n, layout->positions_of(child).count(), "copies");
                   } catch (const SizeOverflow& e) {
                     at_config(e, child, path + suffix);
                   }
                 }
                 walk(child, path + suffix, n, count, visit);
               });
  }
}

void walk_flops(
    const Config& config, const std::string& path, int64_t runs, const FlopContext& context,
    double& total,
    const std::function<void(const Config&, const std::string&, int64_t, double)>& visit) {
  double own = 0;
  try {
    own = config.forward_flops(context);
  } catch (const SizeOverflow& e) {
    if (!e.path().empty()) throw;
    at_config(e, config, path);
  }
  if (visit) visit(config, path, runs, own);
  total += own * static_cast<double>(runs);
  const auto* layout = dynamic_cast<const Layout*>(&config);
  for (const auto& f : config.type().fields) {
    if (!f.children) continue;
    f.children(const_cast<Config&>(config),
               [&](Config& child, const std::string& suffix, const std::string&) {
                 int64_t n = runs;
                 if (layout) {
                   try {
                     n = checked_multiply(n, layout->positions_of(child).count(), "runs");
                   } catch (const SizeOverflow& e) {
                     at_config(e, child, path + suffix);
                   }
                 }
                 walk_flops(child, path + suffix, n, context, total, visit);
               });
  }
}

}  // namespace

double matrix_flops(const std::vector<ParameterShape>& parameters) {
  double elements = 0;
  for (const auto& p : parameters)
    if (p.shape.size() >= 2) elements += static_cast<double>(p.numel());
  return 2 * elements;
}

double count_forward_flops(
    const Config& root, const FlopContext& context,
    const std::function<void(const Config&, const std::string&, int64_t, double)>& visit) {
  double total = 0;
  walk_flops(root, "model", 1, context, total, visit);
  return total;
}

ParameterCount count_parameters(
    const Config& root,
    const std::function<void(const Config&, const std::string&, int64_t)>& visit) {
  ParameterCount count;
  walk(root, "model", 1, count, visit);
  return count;
}

void check_sizes(const Config& root, Diagnostics& diagnostics, const FlopContext& context) {
  try {
    const ParameterCount count = count_parameters(root);
    if (!multiply(count.total, 8))
      throw SizeOverflow("model", root.mark,
                         std::to_string(count.total) + " parameters take more than " +
                             std::string(kCountLimit) + " bytes");
    const double flops = count_forward_flops(root, context);
    if (!std::isfinite(flops))
      throw SizeOverflow("model", root.mark, "the FLOPs per token are not a finite number");
  } catch (const SizeOverflow& e) {
    // A config that resolution made (a linear of an attention) has no place in a file: the
    // error is then placed at the model, whose file the user wrote.
    diagnostics.error(e.mark().file ? e.mark() : root.mark, e.path().empty() ? "model" : e.path(),
                      e.message());
  }
}

}  // namespace blocks::config
