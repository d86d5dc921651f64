// Replays a fuzz target's corpus without libFuzzer: every file below the folders given is fed
// to LLVMFuzzerTestOneInput once, so a regression on a seed input fails the suite (built with
// the project's compiler, run by CTest) without a fuzzing run. A target reports a bug by
// aborting (the test then dies), by letting an exception escape, or by returning non-zero
// (libFuzzer reserves that); the last two are caught here and named with their file. An empty
// corpus fails too: a replay of nothing would pass whatever the code did.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  size_t inputs = 0, failures = 0;
  for (int i = 1; i < argc; ++i) {
    std::error_code error;
    if (!std::filesystem::is_directory(argv[i], error)) {
      std::fprintf(stderr, "%s: not a corpus folder\n", argv[i]);
      return 1;
    }
    for (const auto& entry : std::filesystem::recursive_directory_iterator(argv[i])) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
      ++inputs;
      try {
        const int code =
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        if (code != 0) {
          std::fprintf(stderr, "%s: the target returned %d\n", entry.path().c_str(), code);
          ++failures;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: an exception escaped the target: %s\n", entry.path().c_str(),
                     e.what());
        ++failures;
      }
    }
  }
  std::printf("replayed %zu inputs, %zu failed\n", inputs, failures);
  if (inputs == 0) std::fprintf(stderr, "no inputs: an empty corpus tests nothing\n");
  return inputs > 0 && failures == 0 ? 0 : 1;
}
