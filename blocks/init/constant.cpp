#include "blocks/init/constant.h"

namespace blocks {

void FillInitConfig::declare(Fields<FillInitConfig>& f) {
  f.add("value", &FillInitConfig::value, "The value of every element.");
}

void register_constant_inits(config::Registry& registry) {
  registry.add<FillInitConfig>();
  registry.add<ZerosInitConfig>();
  registry.add<OnesInitConfig>();
}

}  // namespace blocks
