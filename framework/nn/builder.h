// Turns a resolved config tree into LibTorch modules (DESIGN principles 4 and 5). Each config
// type registers a factory for its module (`void register_modules_NAME(nn::ModuleRegistry&
// modules)` in blocks/**/*_module.cpp, collected at build time like the config types); modules
// take their typed, resolved config and ask the Builder for their children and parameters, so
// parameter names follow the config tree and every parameter gets its metadata record.
//
//   nn::Builder builder(nn::module_registry(), at::TensorOptions().dtype(at::kFloat));
//   auto model = builder.build_as<LanguageModel>(resolved_root, "model");
//   nn::ParameterTable table = builder.table(*model);
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "framework/config/config.h"
#include "framework/config/error.h"
#include "framework/config/parameters.h"

namespace blocks::nn {

// Bad inputs to a forward call (wrong dtype, width or length), named by module path.
class InputError : public Error {
 public:
  InputError(const std::string& path, const std::string& message)
      : Error(path + ": " + message) {}
};

// A config the builder cannot turn into a module (no factory, or a broken resolved tree).
class BuildError : public Error {
 public:
  using Error::Error;
};

class Builder;
using Factory = std::function<std::shared_ptr<torch::nn::Module>(const config::Config&, Builder&,
                                                                  const std::string& path)>;

// What an initialization fills: a float32 CPU tensor of the parameter's shape (filled on CPU
// from a per-parameter generator, so values are the same on every device), with the fans of
// one copy (MoE experts stack copies along dim 0).
struct InitTarget {
  at::Tensor values;
  int64_t fan_in = 0, fan_out = 0;
  at::Generator generator;
};
using Initializer = std::function<void(const config::Config&, InitTarget&)>;

class ModuleRegistry {
 public:
  // Registers the module of config type C; `make(const C&, Builder&, path)` returns it.
  template <class C, class Make>
  void add(Make make) {
    add(typeid(C), [make](const config::Config& c, Builder& b, const std::string& path) {
      return std::static_pointer_cast<torch::nn::Module>(
          make(static_cast<const C&>(c), b, path));
    });
  }
  void add(std::type_index type, Factory factory);
  const Factory* find(std::type_index type) const;

  // Registers how initialization type C fills a tensor.
  template <class C, class Fill>
  void add_initializer(Fill fill) {
    add_initializer(typeid(C), [fill](const config::Config& c, InitTarget& target) {
      fill(static_cast<const C&>(c), target);
    });
  }
  void add_initializer(std::type_index type, Initializer fill);
  const Initializer* find_initializer(std::type_index type) const;

 private:
  std::unordered_map<std::type_index, Factory> factories_;
  std::unordered_map<std::type_index, Initializer> initializers_;
};

// Every module type, registered once.
const ModuleRegistry& module_registry();
// Registers every module of blocks/ into `modules` (for programs that add module types of their
// own next to blocks'; see blocks::register_all for the config side).
void register_all(ModuleRegistry& modules);

// How a parameter was made: its owner, initialization and optimizer metadata.
struct ParameterRecord {
  std::string name;         // full name in the module tree: decoder.3.mixer.query.weight
  std::vector<int64_t> shape;
  at::ScalarType dtype = at::kFloat;
  double lr_scale = 1.0;    // product of lr_scale along the config path
  bool trainable = true;
  std::string role = "base";  // base, lora_a, lora_b
  std::string config_path;    // owning config: model.decoder.block.mixer.query
  std::string declared_name;  // as the owner's parameters() lists it: weight, 0.weight, conv.bias
  std::shared_ptr<const config::Config> initialization;  // an InitializationConfig
  int64_t fan_in = 0, fan_out = 0;  // per copy, for fan-scaled initializations
  at::Tensor tensor;
  int64_t numel() const;
};

using ParameterTable = std::vector<ParameterRecord>;

class Builder {
 public:
  Builder(const ModuleRegistry& registry, at::TensorOptions options);

  const at::TensorOptions& options() const { return options_; }
  bool on_meta() const { return options_.device().is_meta(); }

  // The module of `config` (a child of whoever asks), by its registered factory.
  std::shared_ptr<torch::nn::Module> build(const config::Config& config, const std::string& path);
  template <class M>
  std::shared_ptr<M> build_as(const config::Config& config, const std::string& path) {
    auto module = std::dynamic_pointer_cast<M>(build(config, path));
    if (!module) throw BuildError(path + ": type `" + config.type().name +
                                  "` does not build the module this slot expects");
    return module;
  }

  // Creates the parameter `name` of `owner` (as listed by owner.parameters(), which gives its
  // shape, lr scale, trainability and role), registers it on `module` under `local` (default:
  // `name`), and records its initialization. Throws BuildError when `owner` lists no such
  // parameter: modules create exactly what the config declares.
  at::Tensor parameter(torch::nn::Module& module, const config::Config& owner,
                       const std::string& owner_path, const std::string& name,
                       const config::Config* initialization, const std::string& local = {},
                       std::vector<int64_t> fans = {});


  // The parameter table of `root` (built by this builder), in module-tree order.
  ParameterTable table(const torch::nn::Module& root) const;

 private:
  const ModuleRegistry& registry_;
  at::TensorOptions options_;
  std::unordered_map<const void*, ParameterRecord> records_;
};

// A field that resolution always sets: modules read it as it is and re-apply no default, so an
// unresolved config is a BuildError naming the field, never a silently different module.
template <class T>
const T& resolved(const std::optional<T>& value, const std::string& path, const char* field) {
  if (!value)
    throw BuildError(path + "." + field + " is unset: modules are built from resolved configs");
  return *value;
}

// The config path of `child` inside `parent`: parent_path + the suffix its field gives
// (".mixer", ".blocks[2]", ".overrides.3").
std::string child_path(const config::Config& parent, const std::string& parent_path,
                       const config::Config& child);

}  // namespace blocks::nn

namespace blocks::nn {

// Fills every parameter of `table` from its initialization, deterministically for `seed`: each
// parameter draws from a generator seeded by (seed, full name), so values do not depend on
// build order, device or which other layers exist. Parameters on the meta device are skipped.
// `progress`, when given, is called as filling goes with (bytes done, bytes in all).
void initialize(const ParameterTable& table, uint64_t seed,
                const ModuleRegistry& registry = module_registry(),
                const std::function<void(size_t, size_t)>& progress = {});

}  // namespace blocks::nn
