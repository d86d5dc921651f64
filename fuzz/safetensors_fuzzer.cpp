// libFuzzer target for safetensors reading: the header parser and validator on the raw bytes
// (SafetensorsFile::parse_header), then the file itself (an in-memory file, opened by path as
// any checkpoint is), every tensor read as a view, copied into a target of another dtype chunk
// by chunk, and its pages released. Any input must end in a SafetensorsError or in tensors;
// any other exception, crash, sanitizer report or disagreement between the two paths is a bug.
// Run: ./build-fuzz/fuzz/safetensors_fuzzer -max_total_time=120 -rss_limit_mb=4096 CORPUS
// (seeds: fuzz/safetensors_corpus/, written by fuzz/make_safetensors_corpus.py).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "framework/weights/safetensors.h"

namespace {

// An anonymous in-memory file holding `data`, closed on scope exit.
struct MemoryFile {
  int fd = -1;
  MemoryFile(const uint8_t* data, size_t size) {
    fd = ::memfd_create("safetensors_fuzz", MFD_CLOEXEC);
    if (fd < 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }
  ~MemoryFile() { ::close(fd); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace blocks::weights;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bool parsed = false;
  size_t count = 0;
  try {
    count = SafetensorsFile::parse_header(bytes, size, "fuzz.safetensors").size();
    parsed = true;
  } catch (const SafetensorsError&) {
  }

  const MemoryFile memory(data, size);
  SafetensorsFile file;
  try {
    file = SafetensorsFile::open(memory.path());
  } catch (const SafetensorsError&) {
    if (parsed) std::abort();  // valid bytes, but the file did not open
    return 0;
  }
  if (!parsed || file.tensors().size() != count) std::abort();
  for (const TensorInfo& info : file.tensors()) {
    at::Tensor view;
    try {
      view = file.tensor(info.name);
    } catch (const SafetensorsError&) {
      continue;  // a dtype LibTorch cannot hold
    }
    if (view.sizes().vec() != info.shape) std::abort();
    // A dtype conversion the tensor's elements survive (bool, complex stay themselves).
    const at::ScalarType to = view.is_complex() || view.scalar_type() == at::kBool
                                  ? view.scalar_type()
                                  : at::kFloat;
    at::Tensor target = at::empty(info.shape, at::TensorOptions().dtype(to));
    file.copy_into(info.name, target);
    // Both paths convert the same way; NaNs (any payload, real or complex parts) compare
    // unequal, so skip those.
    if (view.numel() > 0 && view.numel() <= 4096) {
      const at::Tensor expected = view.to(to);
      const bool nan = (expected.is_floating_point() || expected.is_complex()) &&
                       at::isnan(expected).any().item<bool>();
      if (!nan && !at::equal(target, expected)) std::abort();
    }
    file.release(info.name);
  }
  return 0;
}
