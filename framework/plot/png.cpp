// curves_png: the rasterized figure encoded by libpng into memory, so the file is written
// atomically in one piece (io::write_file) and never half-encoded.
#include <png.h>

#include <csetjmp>

#include "framework/io/files.h"
#include "framework/plot/raster.h"

namespace blocks::plot {
namespace {

// libpng reports errors through a callback that must not return; it jumps back to encode().
struct Encoder {
  std::string bytes;
  std::string error;
};

void on_error(png_structp png, png_const_charp message) {
  static_cast<Encoder*>(png_get_error_ptr(png))->error = message;
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

void on_write(png_structp png, png_bytep data, png_size_t size) {
  static_cast<Encoder*>(png_get_io_ptr(png))->bytes.append(reinterpret_cast<char*>(data), size);
}
void on_flush(png_structp) {}

// Everything with a destructor is made before setjmp: the jump back from on_error crosses only
// libpng's C frames, which own nothing of ours.
std::string encode(const Canvas& canvas) {
  Encoder encoder;
  std::vector<png_bytep> rows(canvas.height());  // libpng only reads them
  for (int y = 0; y < canvas.height(); ++y)
    rows[y] = const_cast<png_bytep>(canvas.rgb().data() + size_t(y) * canvas.width() * 3);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &encoder, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_write_struct(&png, nullptr);
    throw Error("out of memory encoding a PNG");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error("cannot encode the PNG: " + encoder.error);
  }
  png_set_write_fn(png, &encoder, on_write, on_flush);
  png_set_IHDR(png, info, canvas.width(), canvas.height(), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_rows(png, rows.data(), canvas.height());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return std::move(encoder.bytes);
}

}  // namespace

std::string curves_png(const RunLog& run, int width, int height) {
  return encode(rasterize(build_figure(run, width, height)));
}

void write_curves_png(const RunLog& run, const std::string& path, int width, int height) {
  io::write_file(path, curves_png(run, width, height));
}

}  // namespace blocks::plot
