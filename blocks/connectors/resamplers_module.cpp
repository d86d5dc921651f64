// Modules of the resampling connectors. The perceiver follows flamingo_pytorch's
// PerceiverResampler (media_pos_emb added, latents repeated per item, per layer
// latents = attn(x, latents) + latents; latents = ff(latents) + latents; a final LayerNorm),
// the latent attention transformers' Kosmos2ImageToTextProjection after its dense layer.
#include "blocks/connectors/connector_module.h"
#include "blocks/connectors/resamplers.h"
#include "blocks/linear/linear_module.h"
#include "blocks/mlps/activation_module.h"

namespace blocks {
namespace {

// softmax(q k^T * scale) v over heads: q [items, queries, heads * size], k and v
// [items, keys, heads * size].
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads) {
  const int64_t items = q.size(0), size = q.size(2) / heads;
  const auto split = [&](const at::Tensor& x) {
    return x.view({items, x.size(1), heads, size}).transpose(1, 2);
  };
  const at::Tensor scores =
      at::matmul(split(q), split(k).transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(size)));
  const at::Tensor out = at::matmul(at::softmax(scores, -1, at::kFloat).to(v.scalar_type()), split(v));
  return out.transpose(1, 2).reshape({items, q.size(1), heads * size});
}

class PerceiverLayer : public torch::nn::Module {
 public:
  PerceiverLayer(const PerceiverLayerConfig& c, Builder& b, const std::string& path,
                 Activation activation)
      : activation_(activation) {
    media_norm = register_module(
        "media_normalization",
        b.build_as<NormModule>(*c.media_normalization, child_path(c, path, *c.media_normalization)));
    latent_norm = register_module(
        "latent_normalization", b.build_as<NormModule>(*c.latent_normalization,
                                                       child_path(c, path, *c.latent_normalization)));
    const auto linear = [&](const char* name, const LinearConfig& l) {
      return register_module(name, b.build_as<Linear>(l, child_path(c, path, l)));
    };
    query = linear("query", c.query);
    key = linear("key", c.key);
    value = linear("value", c.value);
    output = linear("output", c.output);
    mlp_norm = register_module(
        "mlp_normalization",
        b.build_as<NormModule>(*c.mlp_normalization, child_path(c, path, *c.mlp_normalization)));
    up = linear("up", c.up);
    down = linear("down", c.down);
  }

  at::Tensor forward(const at::Tensor& media, const at::Tensor& latents, int64_t heads) {
    const at::Tensor x = media_norm->forward(media), l = latent_norm->forward(latents);
    const at::Tensor both = at::cat({x, l}, 1);
    at::Tensor h =
        output->forward(attend(query->forward(l), key->forward(both), value->forward(both), heads)) +
        latents;
    return down->forward(activate(activation_, up->forward(mlp_norm->forward(h)))) + h;
  }

  std::shared_ptr<NormModule> media_norm, latent_norm, mlp_norm;
  std::shared_ptr<Linear> query, key, value, output, up, down;

 private:
  Activation activation_;
};

class PerceiverResampler : public ConnectorModule {
 public:
  PerceiverResampler(const PerceiverResamplerConfig& c, Builder& b, const std::string& path)
      : heads_(c.heads) {
    latents_ = register_module("latents", b.build_as<Weight>(c.latents, child_path(c, path, c.latents)));
    media_position_ = register_module(
        "media_position", b.build_as<Weight>(c.media_position, child_path(c, path, c.media_position)));
    auto list = register_module("layers", std::make_shared<torch::nn::Module>());
    const std::string layer_path = child_path(c, path, c.layer);
    for (int64_t i = 0; i < c.depth; ++i)
      layers_.push_back(list->register_module(
          std::to_string(i),
          std::make_shared<PerceiverLayer>(c.layer, b, layer_path, activation_from_name(c.activation))));
    final_norm_ = register_module(
        "final_normalization",
        b.build_as<NormModule>(*c.final_normalization, child_path(c, path, *c.final_normalization)));
  }

  at::Tensor forward(const at::Tensor& features) override {
    const at::Tensor media = features + media_position_->weight;
    at::Tensor latents = latents_->weight.unsqueeze(0).expand({features.size(0), -1, -1});
    for (const auto& layer : layers_) latents = layer->forward(media, latents, heads_);
    return final_norm_->forward(latents);
  }

 private:
  int64_t heads_;
  std::shared_ptr<Weight> latents_, media_position_;
  std::vector<std::shared_ptr<PerceiverLayer>> layers_;
  std::shared_ptr<NormModule> final_norm_;
};

class LatentAttention : public ConnectorModule {
 public:
  LatentAttention(const LatentAttentionConfig& c, Builder& b, const std::string& path)
      : heads_(c.heads) {
    latents_ = register_module("latents", b.build_as<Weight>(c.latents, child_path(c, path, c.latents)));
    const auto linear = [&](const char* name, const LinearConfig& l) {
      return register_module(name, b.build_as<Linear>(l, child_path(c, path, l)));
    };
    query_ = linear("query", c.query);
    key_ = linear("key", c.key);
    value_ = linear("value", c.value);
    output_ = linear("output", c.output);
  }

  at::Tensor forward(const at::Tensor& features) override {
    const at::Tensor latents = latents_->weight.unsqueeze(0).expand({features.size(0), -1, -1});
    const at::Tensor both = at::cat({features, latents}, 1);
    return output_->forward(
        attend(query_->forward(latents), key_->forward(both), value_->forward(both), heads_));
  }

 private:
  int64_t heads_;
  std::shared_ptr<Weight> latents_;
  std::shared_ptr<Linear> query_, key_, value_, output_;
};

}  // namespace

void register_modules_connector_resamplers(nn::ModuleRegistry& modules) {
  modules.add<PerceiverResamplerConfig>(
      [](const PerceiverResamplerConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<PerceiverResampler>(c, b, path);
      });
  modules.add<LatentAttentionConfig>(
      [](const LatentAttentionConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<LatentAttention>(c, b, path);
      });
}

}  // namespace blocks
