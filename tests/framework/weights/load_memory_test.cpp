// Peak memory of load_safetensors and load_mapped (issue 4): targets built on uninitialised
// storage and filled chunk by chunk from the mapping, each chunk's file pages given back once
// copied.
//
// Each load runs in a forked child (a fresh peak to measure; the file is written by another
// child, so the writer's tensors never count). The child reads VmRSS just before building its
// targets (the process baseline: LibTorch, the test binary) and getrusage's ru_maxrss after the
// load; "load peak" below is that peak minus the baseline, so it includes the model's own
// memory. The issue's bounds, checked on it:
//   F32 file into F32 targets: load peak <= 1.15 x checkpoint bytes + 200 MB (the model itself
//   is checkpoint bytes, so this leaves 0.15 x + 200 MB for everything else; a load that keeps
//   the file's pages resident needs 2 x);
//   BF16 file into F32 targets: load peak <= model bytes + 0.15 x file bytes + 200 MB, i.e. no
//   second full copy of either the file or the converted tensors.
// The children run nothing else LibTorch parallelises before forking.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "framework/weights/safetensors.h"

namespace blocks::weights {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTensors = 24;
constexpr int64_t kRows = 1024, kCols = 3584;  // 14 MiB of F32 each, 336 MiB in all
constexpr int64_t kModelBytes = kTensors * kRows * kCols * 4;
constexpr double kMiB = 1024.0 * 1024.0;

int64_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

// Runs `body` in a child; returns what it wrote to the pipe (two int64s), or fails.
std::pair<int64_t, int64_t> in_child(const std::function<std::pair<int64_t, int64_t>()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) ADD_FAILURE() << "pipe";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    int64_t out[2] = {-1, -1};
    try {
      auto [a, b] = body();
      out[0] = a, out[1] = b;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    }
    (void)!::write(fds[1], out, sizeof out);
    ::_exit(out[0] < 0 ? 1 : 0);
  }
  ::close(fds[1]);
  int64_t out[2] = {-1, -1};
  (void)!::read(fds[0], out, sizeof out);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed";
  return {out[0], out[1]};
}

std::string name(int64_t i) { return "layer." + std::to_string(i) + ".weight"; }

void write_checkpoint(const std::string& path, at::ScalarType dtype) {
  in_child([&] {
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (int64_t i = 0; i < kTensors; ++i) {
      tensors.emplace_back(name(i), at::full({kRows, kCols}, float(i) + 0.5f).to(dtype));
    }
    write_safetensors(path, tensors);
    return std::pair<int64_t, int64_t>{0, 0};
  });
}

// {baseline RSS, peak RSS} of a child loading `path` into fresh F32 targets, by name or through
// `mapping` (which renames layer.N.weight to mapped.N.weight, transposed when `transposed`).
std::pair<int64_t, int64_t> load_peak(const std::string& path,
                                      const std::optional<Mapping>& mapping = std::nullopt,
                                      bool transposed = false) {
  return in_child([&] {
    const int64_t baseline = rss_bytes();
    std::vector<std::pair<std::string, at::Tensor>> targets;
    for (int64_t i = 0; i < kTensors; ++i)
      targets.emplace_back(mapping ? "mapped." + std::to_string(i) + ".weight" : name(i),
                           transposed ? at::empty({kCols, kRows}, at::kFloat)
                                      : at::empty({kRows, kCols}, at::kFloat));
    const LoadReport report =
        mapping ? load_mapped(targets, {path}, *mapping) : load_safetensors(targets, {path});
    if (report.loaded != kTensors) throw std::runtime_error("not all loaded");
    for (int64_t i = 0; i < kTensors; ++i) {
      const auto& t = targets[i].second;
      if (t.min().item<float>() != float(i) + 0.5f || t.max().item<float>() != float(i) + 0.5f)
        throw std::runtime_error("wrong values in " + name(i));
    }
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return std::pair<int64_t, int64_t>{baseline, int64_t(usage.ru_maxrss) * 1024};
  });
}

class LoadMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("load_memory_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(LoadMemoryTest, F32IntoF32StaysUnderTheIssuesBound) {
  const std::string path = dir_ / "f32.safetensors";
  write_checkpoint(path, at::kFloat);
  const int64_t file_bytes = static_cast<int64_t>(fs::file_size(path));
  const auto [baseline, peak] = load_peak(path);
  ASSERT_GT(baseline, 0);
  const int64_t load = peak - baseline;
  const double bound = 1.15 * double(file_bytes) + 200 * kMiB;
  std::printf("F32 -> F32: checkpoint %.1f MiB, baseline %.1f MiB, peak %.1f MiB, "
              "load peak %.1f MiB (%.3f x checkpoint), bound %.1f MiB\n",
              file_bytes / kMiB, baseline / kMiB, peak / kMiB, load / kMiB,
              double(load) / double(file_bytes), bound / kMiB);
  EXPECT_LE(double(load), bound);
  // The chunked load needs well under the issue's slack: the model plus a few chunks.
  EXPECT_LE(double(load), double(kModelBytes) + 100 * kMiB);
}

TEST_F(LoadMemoryTest, Bf16IntoF32HoldsNoSecondFullCopy) {
  const std::string path = dir_ / "bf16.safetensors";
  write_checkpoint(path, at::kBFloat16);
  const int64_t file_bytes = static_cast<int64_t>(fs::file_size(path));
  const auto [baseline, peak] = load_peak(path);
  ASSERT_GT(baseline, 0);
  const int64_t load = peak - baseline;
  const double bound = double(kModelBytes) + 0.15 * double(file_bytes) + 200 * kMiB;
  std::printf("BF16 -> F32: file %.1f MiB, model %.1f MiB, baseline %.1f MiB, peak %.1f MiB, "
              "load peak %.1f MiB (model + %.1f MiB), bound %.1f MiB\n",
              file_bytes / kMiB, kModelBytes / kMiB, baseline / kMiB, peak / kMiB, load / kMiB,
              (load - kModelBytes) / kMiB, bound / kMiB);
  EXPECT_LE(double(load), bound);
  // Tighter: holding the whole file (model + 168 MiB) or a converted copy would exceed this.
  EXPECT_LE(double(load), double(kModelBytes) + 100 * kMiB);
}

Mapping renaming(bool transpose) {
  MappingRule rule;
  rule.from = R"(layer\.(\d+)\.weight)";
  rule.to = {"mapped.$1.weight"};
  rule.transpose = transpose;
  return {"test", {rule}};
}

// Mapped loads (Hugging Face names): a renamed tensor is copied chunk by chunk as by name; a
// transposed one goes through the whole tensor, one at a time, each released once copied.
TEST_F(LoadMemoryTest, MappedBf16IntoF32HoldsNoSecondFullCopy) {
  const std::string path = dir_ / "bf16.safetensors";
  write_checkpoint(path, at::kBFloat16);
  const int64_t file_bytes = static_cast<int64_t>(fs::file_size(path));
  const double bound = double(kModelBytes) + 0.15 * double(file_bytes) + 200 * kMiB;
  for (const bool transposed : {false, true}) {
    const auto [baseline, peak] = load_peak(path, renaming(transposed), transposed);
    ASSERT_GT(baseline, 0);
    const int64_t load = peak - baseline;
    std::printf("mapped%s BF16 -> F32: file %.1f MiB, model %.1f MiB, load peak %.1f MiB "
                "(model + %.1f MiB), bound %.1f MiB\n",
                transposed ? " and transposed" : "", file_bytes / kMiB, kModelBytes / kMiB,
                load / kMiB, (load - kModelBytes) / kMiB, bound / kMiB);
    EXPECT_LE(double(load), bound);
    // Renamed: a few chunks; transposed: one tensor of the file (7 MiB) at a time.
    EXPECT_LE(double(load), double(kModelBytes) + 100 * kMiB);
  }
}

TEST_F(LoadMemoryTest, MappedF32IntoF32StaysUnderTheIssuesBound) {
  const std::string path = dir_ / "f32.safetensors";
  write_checkpoint(path, at::kFloat);
  const int64_t file_bytes = static_cast<int64_t>(fs::file_size(path));
  const auto [baseline, peak] = load_peak(path, renaming(false));
  ASSERT_GT(baseline, 0);
  const int64_t load = peak - baseline;
  std::printf("mapped F32 -> F32: checkpoint %.1f MiB, load peak %.1f MiB (%.3f x checkpoint)\n",
              file_bytes / kMiB, load / kMiB, double(load) / double(file_bytes));
  EXPECT_LE(double(load), 1.15 * double(file_bytes) + 200 * kMiB);
  EXPECT_LE(double(load), double(kModelBytes) + 100 * kMiB);
}

}  // namespace
}  // namespace blocks::weights
