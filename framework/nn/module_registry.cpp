#include <mutex>

#include "framework/nn/builder.h"

namespace blocks {
// Generated from blocks/**/*_module.cpp by cmake/registrations.cmake.
void register_all_modules(nn::ModuleRegistry& modules);
}  // namespace blocks

namespace blocks::nn {

void register_all(ModuleRegistry& modules) { register_all_modules(modules); }

const ModuleRegistry& module_registry() {
  static ModuleRegistry registry;
  static std::once_flag once;
  std::call_once(once, [] { register_all(registry); });
  return registry;
}

}  // namespace blocks::nn
