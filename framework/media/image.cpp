// Decoding follows Pillow's PngImagePlugin/JpegImagePlugin (libjpeg's defaults: islow DCT, fancy
// upsampling) and Convert.c; the resize is Pillow's Resample.c (precompute_coeffs,
// normalize_coeffs_8bpc, ImagingResampleHorizontal/Vertical_8bpc); the rest transformers'
// image_processing_clip.py and image_transforms.py.
#include "framework/media/image.h"

#include <jpeglib.h>
// after jpeglib.h, which it needs
#include <jerror.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <csetjmp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

namespace blocks::media {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw ImageError(path + ": " + why);
}

using File = std::unique_ptr<FILE, int (*)(FILE*)>;

File open(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, "cannot open");
  return File(f, &std::fclose);
}

// ---- PNG ----

struct PngError {
  std::string message;
};

void png_error_handler(png_structp png, png_const_charp message) {
  static_cast<PngError*>(png_get_error_ptr(png))->message = message;
  png_longjmp(png, 1);
}
void png_warning_handler(png_structp, png_const_charp) {}

Image read_png(const std::string& path) {
  File file = open(path);
  PngError error;
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, png_error_handler, png_warning_handler);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) fail(path, "out of memory reading the PNG");
  Image image;
  std::vector<uint8_t> raw;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    fail(path, "not a readable PNG image (" + error.message + ")");
  }
  png_init_io(png, file.get());
  png_read_info(png, info);
  const int type = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  // Pillow: palettes and low-depth grey expand to 8 bits; transparency is dropped by
  // convert("RGB"), so tRNS is not expanded into alpha.
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  const bool grey = !(type & PNG_COLOR_MASK_COLOR) && type != PNG_COLOR_TYPE_PALETTE;
  // 16-bit RGB: Pillow reads the high byte (rawmode RGB;16B). 16-bit grey opens as I;16, whose
  // convert("RGB") clips at 255; its values are kept whole here and clipped below.
  const bool wide_grey = grey && depth == 16;
  if (depth == 16 && !wide_grey) png_set_strip_16(png);
  if (wide_grey) png_set_swap(png);  // native little-endian 16-bit values
  if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  image.width = png_get_image_width(png, info);
  image.height = png_get_image_height(png, info);
  const size_t stride = png_get_rowbytes(png, info);
  const int channels = png_get_channels(png, info);
  raw.resize(stride * static_cast<size_t>(image.height));
  rows.resize(static_cast<size_t>(image.height));
  for (int64_t y = 0; y < image.height; ++y) rows[y] = raw.data() + y * stride;
  png_read_image(png, rows.data());
  png_destroy_read_struct(&png, &info, nullptr);
  image.rgb.resize(static_cast<size_t>(image.width * image.height * 3));
  for (int64_t y = 0; y < image.height; ++y)
    for (int64_t x = 0; x < image.width; ++x) {
      uint8_t* out = &image.rgb[(y * image.width + x) * 3];
      const uint8_t* in = rows[y];
      if (wide_grey) {
        uint16_t v = 0;
        std::memcpy(&v, in + x * 2, 2);
        out[0] = out[1] = out[2] = static_cast<uint8_t>(std::min<uint16_t>(v, 255));
      } else if (channels == 1) {
        out[0] = out[1] = out[2] = in[x];
      } else {
        for (int c = 0; c < 3; ++c) out[c] = in[x * channels + c];
      }
    }
  return image;
}

// ---- JPEG ----

struct JpegError {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr info) {
  auto* error = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, error->message);
  std::longjmp(error->jump, 1);
}
// libjpeg pads a truncated stream and only warns; Pillow refuses such a file ("image file is
// truncated"), so that warning is an error here too. Other warnings pass, as in Pillow.
void jpeg_warning(j_common_ptr info, int level) {
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) jpeg_error_exit(info);
}

Image read_jpeg(const std::string& path) {
  File file = open(path);
  jpeg_decompress_struct info{};
  JpegError error{};
  info.err = jpeg_std_error(&error.base);
  error.base.error_exit = jpeg_error_exit;
  error.base.emit_message = jpeg_warning;
  Image image;
  std::vector<uint8_t> row;  // before setjmp: nothing with a destructor is made after it
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&info);
    fail(path, std::string("not a readable JPEG image (") + error.message + ")");
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, file.get());
  jpeg_read_header(&info, TRUE);
  const bool cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
  if (cmyk) fail(path, "CMYK JPEG images are not supported; convert it to RGB first");
  info.out_color_space = info.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  image.width = info.output_width;
  image.height = info.output_height;
  const int channels = info.output_components;
  row.resize(static_cast<size_t>(image.width * channels));
  image.rgb.resize(static_cast<size_t>(image.width * image.height * 3));
  while (info.output_scanline < info.output_height) {
    const int64_t y = info.output_scanline;
    uint8_t* out = &image.rgb[static_cast<size_t>(y * image.width * 3)];
    // RGB scanlines land in place; grey ones are replicated, as convert("RGB") does.
    JSAMPROW rows[1] = {channels == 3 ? out : row.data()};
    jpeg_read_scanlines(&info, rows, 1);
    if (channels != 3)
      for (int64_t x = 0; x < image.width; ++x) out[x * 3] = out[x * 3 + 1] = out[x * 3 + 2] = row[x];
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return image;
}

// ---- Pillow's resampling ----

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Coefficients {
  int64_t size = 0;  // taps per output
  std::vector<int64_t> first, count;
  std::vector<int32_t> k;  // fixed point, size per output
};

Coefficients coefficients(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  Coefficients c;
  c.size = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size * c.size), 0);
  std::vector<double> w(static_cast<size_t>(c.size));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int64_t xmin = static_cast<int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = static_cast<int64_t>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      w[x] = bicubic((static_cast<double>(x + xmin) - center + 0.5) * ss);
      total += w[x];
    }
    for (int64_t x = 0; x < xmax; ++x) {
      const double v = total != 0.0 ? w[x] / total : w[x];
      c.k[xx * c.size + x] = static_cast<int32_t>(
          v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

// Pillow accumulates in 32 bits (ImagingResampleHorizontal_8bpc): 255 times the kernel's
// absolute sum stays below 2^31 at 22 fraction bits.
uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

Image read_image(const std::string& path) {
  File file = open(path);
  unsigned char magic[8] = {};
  const size_t n = std::fread(magic, 1, sizeof magic, file.get());
  if (n >= 8 && png_sig_cmp(magic, 0, 8) == 0) return read_png(path);
  if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) return read_jpeg(path);
  fail(path, "not a PNG or JPEG image");
}

Image resize_bicubic(const Image& in, int64_t width, int64_t height) {
  if (width < 1 || height < 1) throw ImageError("cannot resize to " + std::to_string(width) + "x" +
                                                std::to_string(height));
  const Coefficients h = coefficients(in.width, width), v = coefficients(in.height, height);
  const bool need_h = width != in.width, need_v = height != in.height;
  // Rows the vertical pass reads: the horizontal pass makes only those.
  const int64_t y_first = need_v ? v.first[0] : 0;
  const int64_t y_last = need_v ? v.first[height - 1] + v.count[height - 1] : in.height;
  constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);
  Image mid;
  if (need_h) {
    mid.width = width;
    mid.height = y_last - y_first;
    mid.rgb.resize(static_cast<size_t>(mid.width * mid.height * 3));
    for (int64_t y = 0; y < mid.height; ++y) {
      const uint8_t* row = &in.rgb[static_cast<size_t>((y + y_first) * in.width * 3)];
      uint8_t* o = &mid.rgb[static_cast<size_t>(y * width * 3)];
      for (int64_t x = 0; x < width; ++x, o += 3) {
        const int32_t* k = &h.k[static_cast<size_t>(x * h.size)];
        const uint8_t* p = row + h.first[x] * 3;
        int32_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
        for (int64_t t = 0; t < h.count[x]; ++t, p += 3) {
          s0 += p[0] * k[t];
          s1 += p[1] * k[t];
          s2 += p[2] * k[t];
        }
        o[0] = clip8(s0);
        o[1] = clip8(s1);
        o[2] = clip8(s2);
      }
    }
  } else {
    mid = in;
  }
  if (!need_v) return mid;
  const int64_t shift = need_h ? y_first : 0;
  const int64_t stride = mid.width * 3;
  Image out;
  out.width = mid.width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(out.width * height * 3));
  for (int64_t y = 0; y < height; ++y) {
    const int32_t* k = &v.k[static_cast<size_t>(y * v.size)];
    const uint8_t* top = &mid.rgb[static_cast<size_t>((v.first[y] - shift) * stride)];
    uint8_t* o = &out.rgb[static_cast<size_t>(y * stride)];
    for (int64_t x = 0; x < stride; ++x) {  // channels are independent: one run over bytes
      int32_t sum = kHalf;
      const uint8_t* p = top + x;
      for (int64_t t = 0; t < v.count[y]; ++t, p += stride) sum += *p * k[t];
      o[x] = clip8(sum);
    }
  }
  return out;
}

Image center_crop(const Image& in, int64_t width, int64_t height) {
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.assign(static_cast<size_t>(width * height * 3), 0);
  // transformers: top = (orig - crop) // 2 (floor, also when negative: padding).
  const auto floor_half = [](int64_t d) { return d >= 0 ? d / 2 : -((-d + 1) / 2); };
  const int64_t top = floor_half(in.height - height), left = floor_half(in.width - width);
  for (int64_t y = 0; y < height; ++y) {
    const int64_t sy = y + top;
    if (sy < 0 || sy >= in.height) continue;
    for (int64_t x = 0; x < width; ++x) {
      const int64_t sx = x + left;
      if (sx < 0 || sx >= in.width) continue;
      for (int c = 0; c < 3; ++c) out.rgb[(y * width + x) * 3 + c] = in.rgb[(sy * in.width + sx) * 3 + c];
    }
  }
  return out;
}

ImageProcessor read_image_processor(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail(path, std::string("not JSON: ") + e.what());
  }
  ImageProcessor p;
  const auto boolean = [&](const char* key, bool& out) {
    if (!j.contains(key)) return;
    if (!j[key].is_boolean()) fail(path, std::string(key) + " must be true or false");
    out = j[key].get<bool>();
  };
  boolean("do_convert_rgb", p.do_convert_rgb);
  boolean("do_resize", p.do_resize);
  boolean("do_center_crop", p.do_center_crop);
  boolean("do_rescale", p.do_rescale);
  boolean("do_normalize", p.do_normalize);
  if (j.contains("image_processor_type") && j["image_processor_type"] != "CLIPImageProcessor" &&
      j["image_processor_type"] != "CLIPImageProcessorFast")
    fail(path, "image_processor_type " + j["image_processor_type"].dump() +
                   " is not supported (CLIPImageProcessor is)");
  if (j.contains("resample") && j["resample"] != 3)
    fail(path, "resample " + j["resample"].dump() + " is not supported (3, bicubic, is)");
  const auto positive = [&](const nlohmann::json& v, const std::string& key) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1) fail(path, key + " must be a positive integer");
    return v.get<int64_t>();
  };
  if (j.contains("size")) {
    const auto& s = j["size"];
    if (s.is_object() && s.contains("shortest_edge"))
      p.shortest_edge = positive(s["shortest_edge"], "size.shortest_edge");
    else if (s.is_number())
      p.shortest_edge = positive(s, "size");
    else
      fail(path, "size must be {shortest_edge: N} (other sizes are not supported)");
  }
  if (j.contains("crop_size")) {
    const auto& s = j["crop_size"];
    if (s.is_object() && s.contains("height") && s.contains("width")) {
      p.crop_height = positive(s["height"], "crop_size.height");
      p.crop_width = positive(s["width"], "crop_size.width");
    } else if (s.is_number()) {
      p.crop_height = p.crop_width = positive(s, "crop_size");
    } else {
      fail(path, "crop_size must be {height, width} or a number");
    }
  }
  if (j.contains("rescale_factor")) {
    if (!j["rescale_factor"].is_number()) fail(path, "rescale_factor must be a number");
    p.rescale_factor = j["rescale_factor"].get<double>();
  }
  for (const auto& [key, target] : {std::pair{"image_mean", &p.mean}, std::pair{"image_std", &p.std}}) {
    if (!j.contains(key)) continue;
    const auto& v = j[key];
    if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() ||
        !v[2].is_number())
      fail(path, std::string(key) + " must be three numbers");
    for (int c = 0; c < 3; ++c) (*target)[c] = v[c].get<double>();
  }
  return p;
}

std::vector<float> preprocess(const Image& image, const ImageProcessor& p, int64_t* height,
                              int64_t* width) {
  // Each step reads the last one's image; the input itself is never copied.
  const Image* current = &image;
  Image resized, cropped;
  if (p.do_resize) {
    // get_resize_output_image_size(default_to_square=False): the short side to shortest_edge,
    // the long side int(shortest_edge * long / short).
    const bool portrait = image.width <= image.height;
    const int64_t shorter = portrait ? image.width : image.height;
    const int64_t longer = portrait ? image.height : image.width;
    const int64_t other = static_cast<int64_t>(static_cast<double>(p.shortest_edge) *
                                               static_cast<double>(longer) /
                                               static_cast<double>(shorter));
    resized = portrait ? resize_bicubic(image, p.shortest_edge, other)
                       : resize_bicubic(image, other, p.shortest_edge);
    current = &resized;
  }
  if (p.do_center_crop) {
    cropped = center_crop(*current, p.crop_width, p.crop_height);
    current = &cropped;
  }
  const Image& x = *current;
  const int64_t plane = x.width * x.height;
  std::vector<float> out(static_cast<size_t>(3 * plane));
  for (int64_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) {
      // transformers: rescale in float64 then float32; normalize in float32.
      float v = x.rgb[i * 3 + c];
      if (p.do_rescale) v = static_cast<float>(static_cast<double>(x.rgb[i * 3 + c]) * p.rescale_factor);
      if (p.do_normalize)
        v = (v - static_cast<float>(p.mean[c])) / static_cast<float>(p.std[c]);
      out[c * plane + i] = v;
    }
  if (height) *height = x.height;
  if (width) *width = x.width;
  return out;
}

}  // namespace blocks::media
