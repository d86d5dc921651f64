// Modules of the sequences: `fixed`, `repeat` and `pattern` run their layers in order. Layers
// are named by position ("3"), so parameter names follow the expanded tree
// (decoder.3.mixer.query.weight); a `shared` pattern block is built once and named by its key
// (decoder.attention.mixer...), then run at each of its positions.
#include "blocks/modules.h"
#include "blocks/sequences/fixed.h"
#include "blocks/sequences/pattern.h"
#include "blocks/sequences/repeat.h"

namespace blocks {

namespace {

// Each layer runs with Step::layer naming its position ("decoder.3", nested "decoder.3.1"), so
// caches of shared blocks stay apart per position.
class Sequence : public BlockModule {
 public:
  at::Tensor forward(const at::Tensor& x, Step& step) override {
    const std::string outer = step.layer;
    at::Tensor h = x;
    for (size_t i = 0; i < layers_.size(); ++i) {
      step.layer = (outer.empty() ? "" : outer + ".") + std::to_string(i);
      if (nested_[i]) {
        h = layers_[i]->forward(h, step);
        continue;
      }
      if (step.hook) h = step.hook->before(step.leaf, h, step);
      h = layers_[i]->forward(h, step);
      if (step.hook) h = step.hook->after(step.leaf, h, step);
      ++step.leaf;
      if (step.block_outputs) step.block_outputs->push_back(h);
    }
    step.layer = outer;
    return h;
  }
  void add_layer(std::shared_ptr<BlockModule> layer, const std::string& name) {
    if (!name.empty()) register_module(name, layer);
    nested_.push_back(std::dynamic_pointer_cast<Sequence>(layer) != nullptr);
    layers_.push_back(std::move(layer));
  }
  void pretty_print(std::ostream& s) const override {
    s << "Sequence(layers=" << layers_.size() << ")";
  }

 private:
  std::vector<std::shared_ptr<BlockModule>> layers_;
  std::vector<bool> nested_;  // a sequence: its own leaf blocks report their outputs
};

std::shared_ptr<Sequence> build_fixed(const FixedSequenceConfig& c, Builder& b,
                                      const std::string& path) {
  auto sequence = std::make_shared<Sequence>();
  for (size_t i = 0; i < c.blocks.size(); ++i)
    sequence->add_layer(b.build_as<BlockModule>(*c.blocks[i], child_path(c, path, *c.blocks[i])),
                        std::to_string(i));
  return sequence;
}

// Layer i runs its override when there is one, else its base block; shared base blocks are
// built once.
std::shared_ptr<Sequence> build_layered(const LayeredSequence& c, Builder& b,
                                        const std::string& path) {
  auto sequence = std::make_shared<Sequence>();
  std::map<std::string, std::shared_ptr<BlockModule>> shared;
  for (int64_t i = 0; i < c.length(); ++i) {
    auto override = c.overrides.find(i);
    if (override != c.overrides.end()) {
      const BlockConfig& block = *override->second;
      sequence->add_layer(b.build_as<BlockModule>(block, child_path(c, path, block)),
                          std::to_string(i));
      continue;
    }
    const BlockConfig& block = *c.base_block(i);
    const std::string name = c.base_name(i);
    if (!c.is_shared(name)) {
      sequence->add_layer(b.build_as<BlockModule>(block, child_path(c, path, block)),
                          std::to_string(i));
      continue;
    }
    auto& module = shared[name];
    if (!module) {
      module = b.build_as<BlockModule>(block, child_path(c, path, block));
      sequence->add_layer(module, name);
    } else {
      sequence->add_layer(module, "");
    }
  }
  return sequence;
}

}  // namespace

void register_modules_sequences(nn::ModuleRegistry& modules) {
  modules.add<FixedSequenceConfig>(build_fixed);
  modules.add<RepeatSequenceConfig>(
      [](const RepeatSequenceConfig& c, Builder& b, const std::string& path) {
        return build_layered(c, b, path);
      });
  modules.add<PatternSequenceConfig>(
      [](const PatternSequenceConfig& c, Builder& b, const std::string& path) {
        return build_layered(c, b, path);
      });
}

}  // namespace blocks
