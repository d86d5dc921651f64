// Images against Pillow (Debian's python3-pil), the library transformers' CLIPImageProcessor
// runs on (tests/support/image_references.py follows image_processing_clip.py): a ~1 MP
// photograph-like JPEG, and PNGs in the modes convert("RGB") has rules for (grey, palette with
// transparency, RGBA, 16-bit RGB, 16-bit grey, 1-bit), each prepared to a 336x336 crop; the
// figures (max and mean |blocks - Pillow|, images per second of each) print as the test runs.
#include "framework/media/image.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

const char* kWriter = R"(
import os, sys, time
import numpy as np
from PIL import Image
sys.path.insert(0, os.path.join(SOURCE, "tests/support"))
from image_references import clip_pixels
from tensors import save
rng = np.random.default_rng(0)
# A photograph stand-in: smooth shapes, edges and sensor noise, 1280x800 (1 MP).
yy, xx = np.mgrid[0:800, 0:1280].astype(np.float64)
photo = np.stack([128 + 90 * np.sin(xx / 97 + c) * np.cos(yy / 61 - c) for c in range(3)], -1)
photo[(xx - 640) ** 2 + (yy - 400) ** 2 < 150 ** 2] = [220, 40, 30]
photo += rng.normal(0, 12, photo.shape)
photo = np.clip(photo, 0, 255).astype(np.uint8)
Image.fromarray(photo).save(os.path.join(DIR, "photo.jpg"), quality=90)
small = photo[::4, ::4]
Image.fromarray(small).convert("L").save(os.path.join(DIR, "grey.png"))
p = Image.fromarray(small).convert("P", palette=Image.ADAPTIVE, colors=64)
p.info["transparency"] = 3
p.save(os.path.join(DIR, "palette.png"), transparency=3)
rgba = np.concatenate([small, rng.integers(0, 256, small.shape[:2] + (1,), dtype=np.uint8)], -1)
Image.fromarray(rgba, "RGBA").save(os.path.join(DIR, "rgba.png"))
wide = (small.astype(np.uint16) * 257 + rng.integers(0, 257, small.shape, dtype=np.uint16))
import zlib, struct
def png16(path, array, colour):
    h, w = array.shape[:2]
    raw = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                           chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png16(os.path.join(DIR, "rgb16.png"), wide, 2)
png16(os.path.join(DIR, "grey16.png"), (wide[..., 0] // 200), 0)  # values 0..327: some clip
Image.fromarray(small[..., 0] > 128).save(os.path.join(DIR, "bits.png"))
out = {}
for name in ["photo.jpg", "grey.png", "palette.png", "rgba.png", "rgb16.png", "grey16.png",
             "bits.png"]:
    out[name] = torch.from_numpy(clip_pixels(os.path.join(DIR, name), 336, 336, 336))
start = time.perf_counter()
runs = 20
for _ in range(runs):
    clip_pixels(os.path.join(DIR, "photo.jpg"), 336, 336, 336)
out["pillow_images_per_second"] = torch.tensor([runs / (time.perf_counter() - start)])
save(out, os.path.join(DIR, "pillow.safetensors"))
)";

class Images : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_pillow()) return;
    dir_ = new TempDir();
    std::ofstream(dir_->at("writer.py")) << "import torch\nSOURCE = '" BLOCKS_SOURCE_DIR
                                          "'\nDIR = '" << dir_->path().string() << "'\n"
                                          << kWriter;
    written_ = std::system((std::string(reference_python()) + " " + dir_->at("writer.py") +
                            " 2>" + dir_->at("writer.err"))
                               .c_str()) == 0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static bool have_pillow() {
    static const bool ok =
        have_reference_python() &&
        std::system((std::string(reference_python()) + " -c 'import PIL' 2>/dev/null").c_str()) == 0;
    if (!ok && std::getenv("BLOCKS_REQUIRE_REFERENCES"))
      ADD_FAILURE() << "python3-pil is missing, and BLOCKS_REQUIRE_REFERENCES is set";
    return ok;
  }
  void SetUp() override {
    if (!have_pillow()) GTEST_SKIP() << "python3 with PIL is not installed";
    std::ifstream err(dir_->at("writer.err"));
    ASSERT_TRUE(written_) << std::string(std::istreambuf_iterator<char>(err), {});
  }
  static std::string at(const std::string& name) { return dir_->at(name); }
  static TempDir* dir_;
  static bool written_;
};
TempDir* Images::dir_ = nullptr;
bool Images::written_ = false;

media::ImageProcessor clip336() {
  media::ImageProcessor p;
  p.shortest_edge = p.crop_height = p.crop_width = 336;
  return p;
}

TEST_F(Images, ClipPreprocessingMatchesPillow) {
  auto pillow = weights::SafetensorsFile::open(at("pillow.safetensors"));
  for (const char* name : {"photo.jpg", "grey.png", "palette.png", "rgba.png", "rgb16.png",
                           "grey16.png", "bits.png"}) {
    int64_t h = 0, w = 0;
    const std::vector<float> values = media::preprocess(media::read_image(at(name)), clip336(), &h, &w);
    ASSERT_EQ(h, 336);
    ASSERT_EQ(w, 336);
    const at::Tensor mine = at::tensor(values).view({3, h, w});
    const at::Tensor theirs = pillow.tensor(name);
    const at::Tensor diff = (mine - theirs).abs();
    std::cerr << name << ": max |blocks - Pillow| " << diff.max().item<double>() << ", mean "
              << diff.mean().item<double>() << "\n";
    // The same decoders and Pillow's own fixed-point filter: equal to float32 rounding.
    EXPECT_TRUE(close(mine, theirs, 0, 1e-6)) << name;
  }
  // Throughput on the 1 MP JPEG (decode, resize, crop, normalize), in the same run as Pillow.
  const auto start = std::chrono::steady_clock::now();
  const int runs = 20;
  for (int i = 0; i < runs; ++i) media::preprocess(media::read_image(at("photo.jpg")), clip336());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "images/s on a 1280x800 JPEG to 336x336: blocks " << runs / seconds << ", Pillow "
            << pillow.tensor("pillow_images_per_second").item<double>() << "\n";
}

TEST_F(Images, BadFilesAreNamedErrors) {
  std::ifstream in(at("photo.jpg"), std::ios::binary);
  const std::string jpeg((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(at("cut.jpg"), std::ios::binary) << jpeg.substr(0, 600);
  std::ofstream(at("text.png")) << "not an image at all";
  std::ofstream(at("cut.png"), std::ios::binary) << std::string("\x89PNG\r\n\x1a\n\0\0", 10);
  const auto error = [](const std::string& path) {
    return message_of<media::ImageError>([&] { media::read_image(path); });
  };
  EXPECT_EQ(error(at("text.png")), at("text.png") + ": not a PNG or JPEG image");
  EXPECT_EQ(error(at("missing.png")), at("missing.png") + ": cannot open");
  EXPECT_EQ(error(at("cut.png")).rfind(at("cut.png") + ": not a readable PNG image (", 0), 0u)
      << error(at("cut.png"));
  // libjpeg pads a truncated stream with grey and warns; Pillow refuses it, and so does blocks.
  EXPECT_EQ(error(at("cut.jpg")).rfind(at("cut.jpg") + ": not a readable JPEG image (", 0), 0u)
      << error(at("cut.jpg"));
}

}  // namespace
}  // namespace blocks::testing
