// The kinds of the config language: each is an abstract base whose registered types fill a
// polymorphic slot (`mixer: {type: attention, ...}`).
#pragma once

#include <cstdint>
#include <string_view>

#include "framework/config/config.h"
#include "framework/config/parameters.h"
#include "framework/config/resolve.h"

namespace blocks {

using config::Declared;
using config::Dynamic;
using config::Fields;
using config::Hint;
using config::ParameterShape;
using config::ResolveContext;
using config::set_default;

// Every model opens its own resolution scope (config::ResolveContext::open_model_scope) before
// its type resolves: widths, layer counts, shortcuts and PEFT targets stay inside the model;
// lr scales and trainable flags still multiply down from an enclosing model. `final` so that
// no model type can forget it: types resolve in resolve_model.
struct ModelConfig : config::Config {
  static constexpr std::string_view kind_name = "model";
  void resolve(ResolveContext& ctx) final {
    ctx.open_model_scope();
    resolve_model(ctx);
  }
  virtual void resolve_model(ResolveContext&) {}
};

// A block, or a sequence of blocks standing where a block may stand.
struct BlockConfig : config::Config {
  static constexpr std::string_view kind_name = "block";
  // Transformer blocks in this block once sequences are expanded.
  virtual int64_t layer_count() const = 0;
};

struct SequenceConfig : BlockConfig {
  static constexpr std::string_view kind_name = "sequence";
};

// Mixers and MLPs read hidden_size and write it back; in between, their output projection
// reads `inner_width` features (where Sub-LN puts its extra normalization).
struct MixerConfig : config::Config {
  static constexpr std::string_view kind_name = "mixer";
  virtual int64_t inner_width() const { return 0; }
};

struct MlpConfig : config::Config {
  static constexpr std::string_view kind_name = "mlp";
  virtual int64_t inner_width() const { return 0; }
};

struct NormalizationConfig : config::Config {
  static constexpr std::string_view kind_name = "normalization";
  // Set by the parent during resolution, not a field: the width of each place this config is
  // applied (qk_norm normalizes queries and keys: two places of head_size).
  std::vector<int64_t> widths;
};

struct InitializationConfig : config::Config {
  static constexpr std::string_view kind_name = "initialization";
};

struct RotaryConfig : config::Config {
  static constexpr std::string_view kind_name = "rotary";
  // Set by the attention during resolution, not a field: the width of each rotated head.
  int64_t head_size = 0;
};

struct PeftConfig : config::Config {
  static constexpr std::string_view kind_name = "peft";
};

// Registers every kind; called once by blocks::registry() before the types join.
void register_kinds(config::Registry& registry);

}  // namespace blocks
