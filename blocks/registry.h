// The registry of every kind and type in blocks/. Types join through explicit calls that CMake
// collects from `void register_NAME(config::Registry& registry)` definitions in blocks/**.cpp,
// run once under std::call_once, so nothing depends on static initialisers surviving the link.
#pragma once

#include "framework/config/registry.h"

namespace blocks {

const config::Registry& registry();
// Registers every kind and type into `registry` (for programs that keep their own registry
// and add types of their own).
void register_all(config::Registry& registry);

}  // namespace blocks
