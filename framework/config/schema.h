// The JSON Schema (draft 2020-12) of the config language, and its Markdown reference, both
// generated from the type declarations in a registry.
#pragma once

#include <string>

#include "framework/config/config.h"
#include "framework/config/registry.h"

namespace blocks::config {

Json json_schema(const Registry& registry);
// Markdown reference of every kind, type and field.
std::string reference_markdown(const Registry& registry);
// Plain-text help for one kind or type name (`blockc explain attention`); empty when unknown.
std::string explain(const Registry& registry, const std::string& name);
// Plain-text overview: every kind and its types.
std::string explain_all(const Registry& registry);

}  // namespace blocks::config
