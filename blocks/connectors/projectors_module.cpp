// Modules of the `mlp` (down(act(up(x))), transformers' LlavaMultiModalProjector) and `linear`
// connectors.
#include "blocks/connectors/connector_module.h"
#include "blocks/connectors/projectors.h"
#include "blocks/linear/linear_module.h"
#include "blocks/mlps/activation_module.h"

namespace blocks {
namespace {

class MlpConnector : public ConnectorModule {
 public:
  MlpConnector(const MlpConnectorConfig& c, Builder& b, const std::string& path)
      : activation_(activation_from_name(c.activation)) {
    up_ = register_module("up", b.build_as<Linear>(c.up, child_path(c, path, c.up)));
    down_ = register_module("down", b.build_as<Linear>(c.down, child_path(c, path, c.down)));
  }
  at::Tensor forward(const at::Tensor& x) override {
    return down_->forward(activate(activation_, up_->forward(x)));
  }

 private:
  Activation activation_;
  std::shared_ptr<Linear> up_, down_;
};

class LinearConnector : public ConnectorModule {
 public:
  LinearConnector(const LinearConnectorConfig& c, Builder& b, const std::string& path) {
    projection_ = register_module(
        "projection", b.build_as<Linear>(c.projection, child_path(c, path, c.projection)));
  }
  at::Tensor forward(const at::Tensor& x) override { return projection_->forward(x); }

 private:
  std::shared_ptr<Linear> projection_;
};

}  // namespace

void register_modules_connector_projectors(nn::ModuleRegistry& modules) {
  modules.add<MlpConnectorConfig>(
      [](const MlpConnectorConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<MlpConnector>(c, b, path);
      });
  modules.add<LinearConnectorConfig>(
      [](const LinearConnectorConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<LinearConnector>(c, b, path);
      });
}

}  // namespace blocks
