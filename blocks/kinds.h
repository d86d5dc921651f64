// The kinds of the config language: each is an abstract base whose registered types fill a
// polymorphic slot (`mixer: {type: attention, ...}`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
  // The parts whose FLOPs count per token (summary): the whole model, or a fusion model's
  // decoder (and fusion layers), its encoders counting per media item instead (media_flops).
  virtual std::vector<const config::Config*> per_token_parts() const { return {this}; }
  // Forward FLOPs per media item of each encoder with its connectors, by encoder name.
  virtual std::vector<std::pair<std::string, double>> media_flops() const { return {}; }
};

// A model part that turns one modality's inputs into a sequence of feature vectors (a vision
// tower). Like a model, it opens its own resolution scope; types resolve in resolve_encoder.
struct EncoderConfig : config::Config {
  static constexpr std::string_view kind_name = "encoder";
  void resolve(ResolveContext& ctx) final {
    ctx.open_model_scope();
    resolve_encoder(ctx);
  }
  virtual void resolve_encoder(ResolveContext&) {}
  // What one media item becomes, from the fields as written (the enclosing model reads them
  // before the encoder resolves): feature vectors of this width, this many of them.
  virtual int64_t output_width() const = 0;
  virtual int64_t output_tokens() const = 0;
  // Positions its layers run at per media item (a ViT's patches and class token).
  virtual int64_t sequence_length() const = 0;
};

// Turns an encoder's features into what the decoder takes: a projection, a resampler. The
// enclosing model sets the widths before the connector resolves.
struct ConnectorConfig : config::Config {
  static constexpr std::string_view kind_name = "connector";
  // Not fields: set by the enclosing model, copied by types into their own derived fields.
  int64_t input_width = 0;
  int64_t output_width = 0;
  // Whether the output keeps the input's width (a resampler); otherwise it is the decoder's.
  virtual bool keeps_width() const { return false; }
  // Feature vectors out for `input_tokens` in (a resampler gives its latents).
  virtual int64_t output_tokens(int64_t input_tokens) const { return input_tokens; }
};

// A block, or a sequence of blocks standing where a block may stand.
struct BlockConfig : config::Config {
  static constexpr std::string_view kind_name = "block";
  // Transformer blocks in this block once sequences are expanded.
  virtual int64_t layer_count() const = 0;
  // Keeps only the first `layers` layers, before resolution (an encoder builds the layers up
  // to the one whose features it uses); false where this type cannot.
  virtual bool keep_first_layers(int64_t /*layers*/) { return false; }
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
