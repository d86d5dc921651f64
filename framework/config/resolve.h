// Resolution (DESIGN principle 3): one pre-order pass in which each config fills its defaults
// and pushes values down (hidden size, lr-scale products, linear defaults, PEFT targets, layer
// numbers), then a post-order pass of cross-field rules. The result shows every field.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/load.h"
#include "framework/config/parameters.h"

namespace blocks::config {

struct ResolveContext;

// A PEFT target (`query`, or `mlp` limited to layers 0-7) and how many linears it matched.
struct LinearTarget {
  std::string name;
  std::optional<std::pair<int64_t, int64_t>> layers;  // inclusive range of decoder layers
  Mark mark;
  std::string path;
  size_t matches = 0;
  bool reported = false;  // an error about it was given already

  // Whether a config reached through `ctx` is named by this target: one of the names on its
  // path (field, kind, type) is `name`, and its decoder layers lie in `layers`.
  bool covers(const ResolveContext& ctx) const;
};

// State shared by the whole pass.
struct ResolveState {
  Diagnostics* diagnostics = nullptr;
  int64_t max_layers = LoadLimits{}.max_layers;
};

// What one model shares among its own configs, and nothing above or beside it: a LoRA target
// of a decoder never matches a linear of the encoder next to it.
struct ModelScope {
  std::vector<LinearTarget> targets;      // empty: no `targets` given
  // Parts that train in full beside the adapters (PEFT's modules_to_save): below the first
  // config each one covers, PEFT is off.
  std::vector<LinearTarget> full_training;
  std::vector<std::string> linear_names;  // every logical linear name seen, for suggestions
  std::optional<int64_t> decoder_length;  // layers of the sequence that numbers its layers
};

// What flows down one path of the tree: each child gets a copy, so what a config sets reaches
// its own subtree only. The fields below `scope` are model-scoped: open_model_scope() clears
// them, so a model inside a model never inherits its parent's width, shortcuts or PEFT.
struct ResolveContext {
  std::shared_ptr<ResolveState> state;
  std::shared_ptr<ModelScope> scope = std::make_shared<ModelScope>();
  std::string path;
  Mark mark;                       // nearest source mark, for values made by resolution
  std::vector<std::string> names;  // field names, map keys, kinds and types from the model
  double lr_scale = 1.0;           // product of every lr_scale above, across models too
  // Set by a fusion model's toggles (`decoder_trainable: false`): nothing below trains, across
  // models too; lr scales still show what they would be.
  bool frozen = false;
  std::optional<int64_t> hidden_size;
  int64_t num_layers = 0;  // blocks in the enclosing model's decoder
  bool learned_positions = false;  // the enclosing model adds learned position embeddings
  std::optional<bool> add_linear_biases;
  std::optional<double> init_std;
  bool peft_active = false;   // a PEFT method other than `none` is configured
  int64_t peft_rank = 0;      // rank of LoRA adapters, when LoRA is configured
  double lora_alpha = 0.0;    // LoRA's scale numerator (alpha / rank)
  double lora_dropout = 0.0;  // LoRA's dropout on the adapter input
  // Decoder layers (0-based) that this subtree stands for; null above the decoder.
  std::shared_ptr<const Positions> layers;
  bool number_layers = false;  // the next sequence down is a decoder and numbers its layers

  // Whether base weights here train: a positive lr-scale product, not frozen, and no PEFT
  // method holding them; adapters (LoRA) train without the last condition.
  bool base_trains() const { return lr_scale > 0 && !frozen && !peft_active; }
  bool adapters_train() const { return lr_scale > 0 && !frozen; }
  // Starts a model's own scope: clears every model-scoped value above and gives the model a
  // fresh ModelScope; keeps the state, the path, the lr-scale product and `frozen`. Called by
  // every model type (blocks::ModelConfig does it before its type's own resolution).
  void open_model_scope();
  // Reports at the field's mark (or the nearest known one) with path `path.field`.
  void error(const Config& at, std::string_view field, std::string message) const;
  std::string path_of(std::string_view field) const;
  // a * b for a width that resolution derives (heads x head_size); an overflow is reported at
  // `field` and gives 0, so that nothing downstream counts a wrapped width.
  int64_t product(const Config& at, std::string_view field, int64_t a, int64_t b) const;
};

// Resolves `root` in place. Errors go to `diagnostics`.
void resolve_tree(Config& root, Diagnostics& diagnostics, const std::string& root_path = "model",
                  const LoadLimits& limits = {});

// Visits every config below `root`, pre-order, with its path.
void for_each_config(Config& root, const std::string& root_path,
                     const std::function<void(Config&, const std::string& path)>& visit);

// Hook for configs whose children need their own context (sequences number their layers).
class ChildContexts {
 public:
  virtual ~ChildContexts() = default;
  virtual void enter(const Config& child, ResolveContext& child_ctx) const = 0;
};

}  // namespace blocks::config
