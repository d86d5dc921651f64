#include "framework/config/parameters.h"

namespace blocks::config {

std::vector<ParameterShape> Config::parameters() const { return {}; }
std::vector<FlowStage> Config::flow() const { return {}; }
double Config::forward_flops(const FlopContext&) const { return matrix_flops(parameters()); }

int64_t ParameterShape::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

void walk(const Config& config, const std::string& path, int64_t copies, ParameterCount& count,
          const std::function<void(const Config&, const std::string&, int64_t)>& visit) {
  if (visit) visit(config, path, copies);
  for (const auto& p : config.parameters()) {
    count.total += p.numel() * copies;
    if (p.trainable) count.trainable += p.numel() * copies;
    count.tensors += copies;
  }
  const auto* layout = dynamic_cast<const Layout*>(&config);
  for (const auto& f : config.type().fields) {
    if (!f.children) continue;
    f.children(const_cast<Config&>(config),
               [&](Config& child, const std::string& suffix, const std::string&) {
                 int64_t n = copies;
                 if (layout && !layout->shares_weights(child))
                   n *= static_cast<int64_t>(layout->positions_of(child).size());
                 walk(child, path + suffix, n, count, visit);
               });
  }
}

void walk_flops(
    const Config& config, const std::string& path, int64_t runs, const FlopContext& context,
    double& total,
    const std::function<void(const Config&, const std::string&, int64_t, double)>& visit) {
  const double own = config.forward_flops(context);
  if (visit) visit(config, path, runs, own);
  total += own * static_cast<double>(runs);
  const auto* layout = dynamic_cast<const Layout*>(&config);
  for (const auto& f : config.type().fields) {
    if (!f.children) continue;
    f.children(const_cast<Config&>(config),
               [&](Config& child, const std::string& suffix, const std::string&) {
                 int64_t n = runs;
                 if (layout) n *= static_cast<int64_t>(layout->positions_of(child).size());
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

}  // namespace blocks::config
