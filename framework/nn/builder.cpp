#include "framework/nn/builder.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

namespace blocks::nn {

void ModuleRegistry::add(std::type_index type, Factory factory) {
  if (!factories_.emplace(type, std::move(factory)).second)
    throw RegistrationError(std::string("module registered twice for ") + type.name());
}

const Factory* ModuleRegistry::find(std::type_index type) const {
  auto it = factories_.find(type);
  return it == factories_.end() ? nullptr : &it->second;
}

void ModuleRegistry::add_initializer(std::type_index type, Initializer fill) {
  if (!initializers_.emplace(type, std::move(fill)).second)
    throw RegistrationError(std::string("initializer registered twice for ") + type.name());
}

const Initializer* ModuleRegistry::find_initializer(std::type_index type) const {
  auto it = initializers_.find(type);
  return it == initializers_.end() ? nullptr : &it->second;
}

int64_t ParameterRecord::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Builder::Builder(const ModuleRegistry& registry, at::TensorOptions options)
    : registry_(registry), options_(options) {}

std::shared_ptr<torch::nn::Module> Builder::build(const config::Config& config,
                                                  const std::string& path) {
  const Factory* factory = registry_.find(typeid(config));
  if (!factory)
    throw BuildError(path + ": no module is registered for " +
                     (config.type().kind.empty() ? "" : config.type().kind + " type ") + "`" +
                     config.type().name + "`");
  return (*factory)(config, *this, path);
}

namespace {

// torch.nn.init._calculate_fan_in_and_fan_out.
std::vector<int64_t> default_fans(const std::vector<int64_t>& shape) {
  if (shape.size() < 2) return {shape.empty() ? 1 : shape[0], shape.empty() ? 1 : shape[0]};
  int64_t receptive = 1;
  for (size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

}  // namespace

at::Tensor Builder::parameter(torch::nn::Module& module, const config::Config& owner,
                              const std::string& owner_path, const std::string& name,
                              const config::Config* initialization, const std::string& local,
                              std::vector<int64_t> fans) {
  const auto declared = owner.parameters();
  const config::ParameterShape* shape = nullptr;
  std::vector<std::string> names;
  for (const auto& p : declared) {
    if (p.name == name) shape = &p;
    names.push_back(p.name);
  }
  if (!shape)
    throw BuildError(owner_path + ": the module asks for parameter `" + name +
                     "`, which the config does not declare (it declares: " +
                     (names.empty() ? "none" : config::join(names)) + ")");
  if (!initialization)
    throw BuildError(owner_path + ": parameter `" + name + "` has no initialization");
  at::Tensor tensor = at::empty(shape->shape, options_);
  tensor = module.register_parameter(local.empty() ? name : local, tensor, shape->trainable);

  ParameterRecord record;
  record.shape = shape->shape;
  record.dtype = tensor.scalar_type();
  record.lr_scale = shape->lr_scale;
  record.trainable = shape->trainable;
  record.role = shape->role;
  record.config_path = owner_path;
  record.declared_name = name;
  record.initialization = std::shared_ptr<const config::Config>(initialization->clone());
  if (fans.empty()) fans = default_fans(shape->shape);
  record.fan_in = fans.at(0);
  record.fan_out = fans.at(1);
  records_[tensor.unsafeGetTensorImpl()] = std::move(record);
  return tensor;
}

ParameterTable Builder::table(const torch::nn::Module& root) const {
  ParameterTable table;
  for (const auto& item : root.named_parameters(/*recurse=*/true)) {
    auto it = records_.find(item.value().unsafeGetTensorImpl());
    if (it == records_.end())
      throw BuildError("parameter `" + item.key() + "` was not made through Builder::parameter");
    ParameterRecord record = it->second;
    record.name = item.key();
    record.tensor = item.value();
    record.dtype = item.value().scalar_type();
    table.push_back(std::move(record));
  }
  return table;
}

std::string child_path(const config::Config& parent, const std::string& parent_path,
                       const config::Config& child) {
  std::string found;
  for (const auto& f : parent.type().fields) {
    if (!f.children || !found.empty()) continue;
    f.children(const_cast<config::Config&>(parent),
               [&](config::Config& c, const std::string& suffix, const std::string&) {
                 if (&c == &child && found.empty()) found = parent_path + suffix;
               });
  }
  if (found.empty())
    throw BuildError(parent_path + ": `" + child.type().name + "` is not a child of this config");
  return found;
}

namespace {

// FNV-1a of the name mixed with the seed through splitmix64: independent streams per name.
uint64_t parameter_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (h | 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

void initialize(const ParameterTable& table, uint64_t seed, const ModuleRegistry& registry,
                const std::function<void(size_t, size_t)>& progress) {
  c10::NoGradGuard no_grad;
  size_t done = 0, total = 0;
  for (const auto& record : table) total += record.tensor.nbytes();
  for (const auto& record : table) {
    if (progress) progress(done, total);
    done += record.tensor.nbytes();
    if (record.tensor.device().is_meta()) continue;
    const config::Config& init = *record.initialization;
    const Initializer* fill = registry.find_initializer(typeid(init));
    if (!fill)
      throw BuildError(record.config_path + ": no initializer is registered for `" +
                       init.type().name + "` (parameter " + record.name + ")");
    InitTarget target;
    target.values = at::empty(record.shape, at::TensorOptions().dtype(at::kFloat));
    target.fan_in = record.fan_in;
    target.fan_out = record.fan_out;
    target.generator = at::make_generator<at::CPUGeneratorImpl>(parameter_seed(seed, record.name));
    (*fill)(init, target);
    record.tensor.copy_(target.values);
  }
  if (progress) progress(total, total);
}

}  // namespace blocks::nn
