// Checks that LibTorch's float32 matmul runs on a fast BLAS: times a 1024x1024 at::mm, names
// the library that serves sgemm_, and exits 1 below a GFLOP/s floor (the `blas_is_fast` test).
//   ./build/benchmarks/blas_check [--floor=GFLOPS]
//
// Debian's LibTorch calls the Fortran BLAS through libblas.so.3, whichever library the system
// alternatives point it at. With the reference netlib BLAS every module test and benchmark runs
// an order of magnitude slower while still passing, so this makes that visible in CI.
// Measured on the 2-core dev box: OpenBLAS (pthread) 130-240 GFLOP/s, 80 with one thread
// (OPENBLAS_NUM_THREADS=1); netlib 5-8 GFLOP/s
// (LD_PRELOAD=/usr/lib/x86_64-linux-gnu/blas/libblas.so.3). The floor sits 2x above netlib
// and 5x below single-threaded OpenBLAS, with room for a loaded machine.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>

namespace {

constexpr double kDefaultFloor = 15.0;  // GFLOP/s

// Every mapped file whose name says BLAS (the alternatives link, OpenBLAS itself, a preload).
std::set<std::string> mapped_blas_libraries() {
  std::set<std::string> found;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find("libblas") != std::string::npos || path.find("openblas") != std::string::npos)
      found.insert(path);
  }
  return found;
}

// The library whose sgemm_ the process resolves (what ATen's cpublas calls): when several BLAS
// libraries are mapped, this is the one that does the work.
std::string sgemm_provider() {
  void* symbol = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (!symbol || !dladdr(symbol, &info) || !info.dli_fname) return "(sgemm_ not found)";
  char resolved[4096];
  return realpath(info.dli_fname, resolved) ? resolved : info.dli_fname;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  double floor = kDefaultFloor;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--floor=", 8) == 0) {
      floor = std::atof(argv[i] + 8);
    } else {
      std::fprintf(stderr, "usage: %s [--floor=GFLOPS]\n", argv[0]);
      return 2;
    }
  }

  constexpr int64_t n = 1024;
  at::manual_seed(0);
  const at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  at::Tensor c = at::mm(a, b);  // warm-up: BLAS thread pool, page faults of the output
  // Repeat for at least 0.5 s (a slow BLAS gets a single call, ~0.5-1 s on its own).
  int64_t calls = 0;
  const auto start = std::chrono::steady_clock::now();
  do {
    at::mm_out(c, a, b);
    ++calls;
  } while (seconds_since(start) < 0.5);
  const double elapsed = seconds_since(start);
  const double gflops = 2.0 * n * n * n * static_cast<double>(calls) / elapsed / 1e9;

  std::printf("sgemm_ from: %s\n", sgemm_provider().c_str());
  for (const auto& path : mapped_blas_libraries()) std::printf("mapped: %s\n", path.c_str());
  std::printf("at::mm %ldx%ld float32: %.1f GFLOP/s (%ld calls in %.2f s, %d ATen threads)\n",
              static_cast<long>(n), static_cast<long>(n), gflops, static_cast<long>(calls), elapsed,
              at::get_num_threads());
  if (gflops < floor) {
    std::fprintf(stderr,
                 "blas_check: %.1f GFLOP/s is below the floor of %.1f: LibTorch is on a slow BLAS "
                 "(the reference netlib?). Install OpenBLAS (libopenblas0-pthread) and point "
                 "libblas.so.3 at it with update-alternatives.\n",
                 gflops, floor);
    return 1;
  }
  std::printf("ok: above the floor of %.1f GFLOP/s\n", floor);
  return 0;
}
