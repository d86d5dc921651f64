// Images for vision encoders, as transformers' CLIPImageProcessor prepares them: PNG and JPEG
// decoded by libpng and libjpeg (the libraries Pillow uses, with its settings), made RGB as
// Pillow's convert("RGB") makes them (grey replicated, palette looked up, alpha dropped, 16-bit
// RGB by its high byte, 16-bit grey clipped to 255), resized with Pillow's bicubic filter
// (separable, antialiased, 22-bit fixed point, 8-bit between the passes), center-cropped,
// rescaled and normalized in float32. Torch-free.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "framework/config/error.h"

namespace blocks::media {

// A file that is not a readable PNG or JPEG, named with the decoder's reason.
class ImageError : public Error {
 public:
  using Error::Error;
};

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height x width x 3
};

// Decodes a PNG or JPEG (by its first bytes) into RGB.
Image read_image(const std::string& path);

// Pillow's Image.resize((width, height), Image.BICUBIC, reducing_gap=None).
Image resize_bicubic(const Image& image, int64_t width, int64_t height);

// transformers' center_crop: the middle width x height (top and left rounded down); an image
// smaller than the crop is padded with zeros around it.
Image center_crop(const Image& image, int64_t width, int64_t height);

// What preprocessor_config.json says (CLIPImageProcessor's fields and defaults).
struct ImageProcessor {
  bool do_convert_rgb = true, do_resize = true, do_center_crop = true, do_rescale = true,
       do_normalize = true;
  int64_t shortest_edge = 224;  // size.shortest_edge
  int64_t crop_height = 224, crop_width = 224;
  double rescale_factor = 1.0 / 255.0;
  std::array<double, 3> mean = {0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> std = {0.26862954, 0.26130258, 0.27577711};
};

// Reads a preprocessor_config.json; throws ImageError naming the file and key for values it
// cannot take (a resample other than bicubic, an unknown processor class).
ImageProcessor read_image_processor(const std::string& path);

// The pixel values of `image` [3, height, width], channel-major, float32.
std::vector<float> preprocess(const Image& image, const ImageProcessor& processor,
                              int64_t* height = nullptr, int64_t* width = nullptr);

}  // namespace blocks::media
