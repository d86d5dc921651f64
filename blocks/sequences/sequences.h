// Block sequences (Fast-LLM's BlockSequenceConfig): `fixed` lists its blocks, `repeat` repeats
// one block (which may itself be a sequence), `pattern` lays named blocks out by a pattern
// (Megatron's hybrid strings such as "M*M*"). Named blocks may be shared: every position of a
// shared block uses one set of weights (Zamba's shared attention, ALBERT). `repeat` and
// `pattern` take per-layer overrides, deep-merged onto the layer's block while parsing.
// The sequence that is a model's decoder numbers its layers for layer-ranged PEFT targets.
#pragma once

#include <map>

#include "blocks/kinds.h"

namespace blocks {

// What repeat and pattern share: per-layer overrides and layer numbering.
struct LayeredSequence : SequenceConfig, config::ChildContexts {
  std::map<int64_t, Dynamic<BlockConfig>> overrides;
  double lr_scale = 1.0;

  virtual int64_t length() const = 0;
  // The block at `layer` before overrides, and the name it goes by ("" for repeat).
  virtual const Dynamic<BlockConfig>& base_block(int64_t layer) const = 0;
  virtual std::string base_name(int64_t layer) const = 0;
  virtual bool is_shared(const std::string& name) const = 0;

  int64_t layer_count() const override;
  void enter(const config::Config& child, ResolveContext& child_ctx) const override;

 protected:
  void resolve_layers(ResolveContext& ctx);
  void validate_overrides(const ResolveContext& ctx) const;
  bool numbering_ = false;
};

struct FixedSequenceConfig : Declared<FixedSequenceConfig, SequenceConfig>, config::ChildContexts {
  static constexpr std::string_view type_name = "fixed";
  static constexpr std::string_view type_doc = "An explicit list of blocks.";
  std::vector<Dynamic<BlockConfig>> blocks;
  double lr_scale = 1.0;
  static void declare(Fields<FixedSequenceConfig>& f);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t layer_count() const override;
  void enter(const config::Config& child, ResolveContext& child_ctx) const override;

 private:
  bool numbering_ = false;
};

struct RepeatSequenceConfig : Declared<RepeatSequenceConfig, LayeredSequence> {
  static constexpr std::string_view type_name = "repeat";
  static constexpr std::string_view type_doc =
      "One block (or a sequence as a block) repeated num_layers times, each with its own weights.";
  Dynamic<BlockConfig> block;
  int64_t num_layers = 0;
  static void declare(Fields<RepeatSequenceConfig>& f);
  static void preprocess(config::Node& node, config::ParseContext& ctx);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t length() const override { return num_layers; }
  const Dynamic<BlockConfig>& base_block(int64_t) const override { return block; }
  std::string base_name(int64_t) const override { return {}; }
  bool is_shared(const std::string&) const override { return false; }
};

struct PatternSequenceConfig : Declared<PatternSequenceConfig, LayeredSequence> {
  static constexpr std::string_view type_name = "pattern";
  static constexpr std::string_view type_doc =
      "Named blocks laid out by a pattern (a list of names, or a string of one-letter names), "
      "repeated to num_layers.";
  std::map<std::string, Dynamic<BlockConfig>> blocks;
  std::vector<std::string> pattern;
  std::optional<int64_t> num_layers;  // default: the pattern's length
  std::vector<std::string> shared;
  static void declare(Fields<PatternSequenceConfig>& f);
  static void preprocess(config::Node& node, config::ParseContext& ctx);
  void resolve(ResolveContext& ctx) override;
  void validate(const ResolveContext& ctx) const override;
  int64_t length() const override;
  const Dynamic<BlockConfig>& base_block(int64_t layer) const override;
  std::string base_name(int64_t layer) const override;
  bool is_shared(const std::string& name) const override;
};

}  // namespace blocks
