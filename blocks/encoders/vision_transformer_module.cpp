// The vision transformer module, following transformers' modeling_clip.py: CLIPVisionEmbeddings
// (conv patches, class token first, position table, interpolate_pos_encoding) and
// CLIPVisionTransformer (pre_layrnorm, then the encoder layers, hidden_states[0] being the
// pre-normed embeddings).
#include <ATen/ATen.h>

#include "blocks/encoders/encoder_module.h"
#include "blocks/encoders/vision_transformer.h"
#include "blocks/linear/linear_module.h"

namespace blocks {
namespace {

class VisionTransformer : public EncoderModule {
 public:
  VisionTransformer(const VisionTransformerConfig& c, Builder& b, const std::string& path)
      : config_(c), path_(path), selected_(c.selected_layers()) {
    patch_ = register_module("patch_embedding", b.build_as<Weight>(c.patch_embedding,
                                                                 child_path(c, path, c.patch_embedding)));
    if (c.patch_embedding_bias)
      patch_bias_ = register_module(
          "patch_embedding_bias",
          b.build_as<Weight>(*c.patch_embedding_bias, child_path(c, path, *c.patch_embedding_bias)));
    if (c.class_embedding)
      class_ = register_module(
          "class_embedding",
          b.build_as<Weight>(*c.class_embedding, child_path(c, path, *c.class_embedding)));
    position_ = register_module(
        "position_embedding",
        b.build_as<Weight>(c.position_embedding, child_path(c, path, c.position_embedding)));
    if (c.pre_normalization)
      pre_norm_ = register_module(
          "pre_normalization",
          b.build_as<NormModule>(*c.pre_normalization, child_path(c, path, *c.pre_normalization)));
    body_ = register_module("body", b.build_as<BlockModule>(*c.body, child_path(c, path, *c.body)));
    if (c.post_normalization)
      post_norm_ = register_module(
          "post_normalization",
          b.build_as<NormModule>(*c.post_normalization, child_path(c, path, *c.post_normalization)));
  }

  InputSpec input() const override {
    const auto& c = config_;
    return {"pixel_values", InputSpec::Type::floating, 4, false, "",
            "images [images, " + std::to_string(c.channels) + ", " +
                std::to_string(c.image_size) + ", " + std::to_string(c.image_size) + "]" +
                (c.interpolate_positions ? " (or any multiple of " + std::to_string(c.patch_size) +
                                               " pixels a side)"
                                         : "")};
  }

  at::Tensor forward(const at::Tensor& pixels) override {
    check(pixels);
    const auto& c = config_;
    const at::Tensor weight = patch_->weight;
    // The most reported failure of fusion models is float32 pixels into a bfloat16 tower.
    const at::Tensor x_in = pixels.to(weight.options());
    at::Tensor x = at::conv2d(x_in, weight, patch_bias_ ? patch_bias_->weight : at::Tensor(),
                              {c.patch_size, c.patch_size});
    const int64_t grid_h = x.size(2), grid_w = x.size(3);
    x = x.flatten(2).transpose(1, 2);  // [images, patches, hidden]
    const int64_t images = x.size(0);
    if (class_) x = at::cat({class_->weight.view({1, 1, -1}).expand({images, 1, -1}), x}, 1);
    x = x + positions(grid_h, grid_w).unsqueeze(0);
    if (pre_norm_) x = pre_norm_->forward(x);

    Step step;
    step.positions = at::arange(x.size(1), at::TensorOptions().dtype(at::kLong).device(x.device()))
                         .unsqueeze(0)
                         .expand({images, x.size(1)});
    step.layer = "body";
    std::vector<at::Tensor> outputs;
    const bool wants_inner = std::any_of(selected_.begin(), selected_.end(), [&](int64_t l) {
      return l < c.built_layers();
    });
    if (wants_inner) step.block_outputs = &outputs;
    const at::Tensor embeddings = x;
    const at::Tensor last = c.built_layers() > 0 ? body_->forward(x, step) : x;

    std::vector<at::Tensor> features;
    for (int64_t layer : selected_) {
      at::Tensor h = layer == 0                  ? embeddings
                     : layer == c.built_layers() ? last
                                                 : outputs.at(static_cast<size_t>(layer - 1));
      if (post_norm_) h = post_norm_->forward(h);
      if (c.drop_class_token) h = h.slice(1, 1);
      features.push_back(h);
    }
    return features.size() == 1 ? features[0] : at::cat(features, -1);
  }

  void pretty_print(std::ostream& s) const override {
    s << "VisionTransformer(image_size=" << config_.image_size
      << ", patch_size=" << config_.patch_size << ", layers=" << config_.built_layers() << ")";
  }

 private:
  void check(const at::Tensor& pixels) const {
    const auto& c = config_;
    if (!at::isFloatingType(pixels.scalar_type()))
      throw InputError(path_, "pixel_values must be floating point, got " +
                                  std::string(c10::toString(pixels.scalar_type())));
    if (pixels.dim() != 4)
      throw InputError(path_, "pixel_values must be [images, channels, height, width], got shape " +
                                  c10::str(pixels.sizes()));
    if (pixels.size(1) != c.channels)
      throw InputError(path_, "pixel_values have " + std::to_string(pixels.size(1)) +
                                  " channels, but the encoder takes " +
                                  std::to_string(c.channels) + " (shape " +
                                  c10::str(pixels.sizes()) + ")");
    const int64_t h = pixels.size(2), w = pixels.size(3);
    if (c.interpolate_positions) {
      if (h < c.patch_size || w < c.patch_size || h % c.patch_size || w % c.patch_size)
        throw InputError(path_, "images of " + std::to_string(h) + "x" + std::to_string(w) +
                                    " pixels are not a whole number of " +
                                    std::to_string(c.patch_size) + "-pixel patches a side");
    } else if (h != c.image_size || w != c.image_size) {
      throw InputError(path_, "images of " + std::to_string(h) + "x" + std::to_string(w) +
                                  " pixels, but the encoder takes " +
                                  std::to_string(c.image_size) + "x" +
                                  std::to_string(c.image_size) +
                                  " (set interpolate_positions for other sizes)");
    }
  }

  // The position table for a grid of grid_h x grid_w patches: the table itself at the trained
  // size, else its patch rows resized bicubically (align_corners false), the class row kept.
  at::Tensor positions(int64_t grid_h, int64_t grid_w) const {
    const at::Tensor& table = position_->weight;
    const int64_t side = config_.image_size / config_.patch_size;
    if (grid_h == side && grid_w == side) return table;
    const int64_t first = class_ ? 1 : 0, dim = table.size(1);
    const at::Tensor grid =
        table.slice(0, first).reshape({1, side, side, dim}).permute({0, 3, 1, 2}).to(at::kFloat);
    const at::Tensor resized =
        at::upsample_bicubic2d(grid, {grid_h, grid_w}, /*align_corners=*/false)
            .permute({0, 2, 3, 1})
            .reshape({grid_h * grid_w, dim})
            .to(table.scalar_type());
    return first ? at::cat({table.slice(0, 0, 1), resized}, 0) : resized;
  }

  const VisionTransformerConfig config_;
  std::string path_;
  std::vector<int64_t> selected_;
  std::shared_ptr<Weight> patch_, patch_bias_, class_, position_;
  std::shared_ptr<NormModule> pre_norm_, post_norm_;
  std::shared_ptr<BlockModule> body_;
};

}  // namespace

void register_modules_vision_transformer(nn::ModuleRegistry& modules) {
  modules.add<VisionTransformerConfig>(
      [](const VisionTransformerConfig& c, Builder& b, const std::string& path) {
        return std::make_shared<VisionTransformer>(c, b, path);
      });
}

}  // namespace blocks
