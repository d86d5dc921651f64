#include "framework/config/parameters.h"

namespace blocks::config {

std::vector<ParameterShape> Config::parameters() const { return {}; }
std::vector<FlowStage> Config::flow() const { return {}; }

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

}  // namespace

ParameterCount count_parameters(
    const Config& root,
    const std::function<void(const Config&, const std::string&, int64_t)>& visit) {
  ParameterCount count;
  walk(root, "model", 1, count, visit);
  return count;
}

}  // namespace blocks::config
