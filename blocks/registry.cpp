#include "blocks/registry.h"

#include <mutex>

#include "blocks/kinds.h"

namespace blocks {

// Generated from every blocks/**.cpp registration function: registered_types.cpp.
void register_all_types(config::Registry&);

void register_kinds(config::Registry& r) {
  r.add_kind("model", "A whole model: what a config file's `model:` holds.");
  r.add_kind("block", "One layer of a stack, or a sequence standing where a layer may stand.",
             {"sequence"});
  r.add_kind("sequence", "An ordered stack of blocks; sequences nest.");
  r.add_kind("mixer", "The token-mixing sub-layer of a block (attention, state-space).");
  r.add_kind("mlp", "The channel-mixing sub-layer of a block.");
  r.add_kind("normalization", "A normalization layer.");
  r.add_kind("initialization", "How a parameter is initialized.");
  r.add_kind("rotary", "Rotary position embedding applied to queries and keys.");
  r.add_kind("encoder", "Turns one modality's inputs (images) into feature vectors.");
  r.add_kind("connector",
             "Brings an encoder's features to the decoder: a projection or a resampler.");
  r.add_kind("peft", "Parameter-efficient fine-tuning applied to the model's linear layers.");
  r.add_kind("schedule", "How a training run's learning rate changes from step to step.");
}

void register_all(config::Registry& target) {
  register_kinds(target);
  register_all_types(target);
}

const config::Registry& registry() {
  static config::Registry instance;
  static std::once_flag once;
  std::call_once(once, [] { register_all(instance); });
  return instance;
}

}  // namespace blocks
