#include "blocks/heads/head_module.h"

#include "blocks/linear/affine.h"

namespace blocks {

Head::Head(const HeadConfig& c, Builder& b, const std::string& path) : path_(path) {
  normalization = register_module(
      "normalization",
      b.build_as<NormModule>(*c.normalization, child_path(c, path, *c.normalization)));
  if (c.output)
    output = register_module("output", b.build_as<Weight>(*c.output, child_path(c, path, *c.output)));
}

at::Tensor Head::forward(const at::Tensor& x) {
  const at::Tensor& matrix = output ? output->weight : tied_;
  if (!matrix.defined()) throw nn::BuildError(path_ + ": tied head used before tie()");
  return affine(normalization->forward(x), matrix);
}

void register_modules_head(nn::ModuleRegistry& modules) {
  modules.add<HeadConfig>([](const HeadConfig& c, Builder& b, const std::string& path) {
    return std::make_shared<Head>(c, b, path);
  });
}

}  // namespace blocks
