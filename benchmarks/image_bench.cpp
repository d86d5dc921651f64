// Image preprocessing throughput: a ~1 MP photograph-like JPEG (1280x800) prepared for CLIP at
// 336 pixels (decode, convert to RGB, bicubic resize of the short side, center crop, rescale,
// normalize) by blocks (framework/media/image.h) and by Pillow + numpy as transformers'
// CLIPImageProcessor runs it (tests/support/image_references.py), in the same run on the same
// file; each stage timed apart. Python with Pillow (Debian's python3-pil) writes the photo.
//   ./build/benchmarks/image_bench [--runs=50]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "framework/media/image.h"

namespace {

namespace fs = std::filesystem;
using blocks::media::ImageProcessor;

const char* kPython = "/usr/bin/python3";

// The photograph stand-in of tests/framework/media/image_test.cpp, then Pillow's timings.
const char* kScript = R"(
import sys, time
import numpy as np
from PIL import Image
sys.path.insert(0, SOURCE + "/tests/support")
from image_references import clip_pixels, CLIP_MEAN, CLIP_STD
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:800, 0:1280].astype(np.float64)
photo = np.stack([128 + 90 * np.sin(xx / 97 + c) * np.cos(yy / 61 - c) for c in range(3)], -1)
photo[(xx - 640) ** 2 + (yy - 400) ** 2 < 150 ** 2] = [220, 40, 30]
photo += rng.normal(0, 12, photo.shape)
Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(PATH, quality=90)
def timed(f):
    start = time.perf_counter()
    for _ in range(RUNS): f()
    return (time.perf_counter() - start) / RUNS
decode = timed(lambda: Image.open(PATH).convert("RGB"))
image = Image.open(PATH).convert("RGB")
resize = timed(lambda: image.resize((537, 336), resample=Image.BICUBIC, reducing_gap=None))
small = np.array(image.resize((537, 336), resample=Image.BICUBIC, reducing_gap=None))
def rest():
    x = small[0:336, 100:436]
    x = (x.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    return x.transpose(2, 0, 1).copy()
crop = timed(rest)
whole = timed(lambda: clip_pixels(PATH, 336, 336, 336))
print(decode, resize, crop, whole)
)";

double seconds_per_run(int runs, const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / runs;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 50;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--runs=", 7) == 0) runs = std::atoi(argv[i] + 7);
  const fs::path dir = fs::temp_directory_path() / ("image_bench_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string photo = (dir / "photo.jpg").string();
  {
    std::ofstream(dir / "bench.py") << "SOURCE = '" BLOCKS_SOURCE_DIR "'\nPATH = '" << photo
                                    << "'\nRUNS = " << runs << "\n"
                                    << kScript;
  }
  const std::string command = std::string(kPython) + " " + (dir / "bench.py").string() + " > " +
                              (dir / "pillow.txt").string();
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "image_bench: %s with numpy and PIL is needed (python3-pil)\n", kPython);
    fs::remove_all(dir);
    return 1;
  }
  double p_decode = 0, p_resize = 0, p_crop = 0, p_whole = 0;
  std::ifstream(dir / "pillow.txt") >> p_decode >> p_resize >> p_crop >> p_whole;

  ImageProcessor clip;
  clip.shortest_edge = clip.crop_height = clip.crop_width = 336;
  const blocks::media::Image image = blocks::media::read_image(photo);
  const blocks::media::Image small = blocks::media::resize_bicubic(image, 537, 336);
  ImageProcessor no_resize = clip;
  no_resize.do_resize = false;
  const double decode = seconds_per_run(runs, [&] { blocks::media::read_image(photo); });
  const double resize =
      seconds_per_run(runs, [&] { blocks::media::resize_bicubic(image, 537, 336); });
  const double crop = seconds_per_run(runs, [&] { blocks::media::preprocess(small, no_resize); });
  const double whole = seconds_per_run(
      runs, [&] { blocks::media::preprocess(blocks::media::read_image(photo), clip); });
  fs::remove_all(dir);

  std::printf("1280x800 JPEG to a 336x336 CLIP crop, %d runs each (ms per image)\n", runs);
  std::printf("%-26s %10s %10s %8s\n", "stage", "blocks", "Pillow", "ratio");
  const auto row = [](const char* name, double b, double p) {
    std::printf("%-26s %10.2f %10.2f %8.3f\n", name, 1e3 * b, 1e3 * p, b / p);
  };
  row("decode + convert(RGB)", decode, p_decode);
  row("bicubic resize to 537x336", resize, p_resize);
  row("crop, rescale, normalize", crop, p_crop);
  row("whole", whole, p_whole);
  std::printf("images/s: blocks %.1f, Pillow %.1f\n", 1 / whole, 1 / p_whole);
  return 0;
}
