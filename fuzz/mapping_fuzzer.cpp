// libFuzzer target for user mapping files (`--map`): YAML or JSON loading, rule parsing, regex
// compilation with PCRE2 and its limits. Any input must end in a Mapping or in a MappingError,
// never in a crash, hang or other exception; rules of a parsed mapping are then matched against
// a few names, which must end in a match, a miss or a MappingError-worthy PatternError.
// Run: ./build-fuzz/fuzz/mapping_fuzzer -max_total_time=600 -rss_limit_mb=2048 fuzz/mapping_corpus
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "framework/weights/mapping_rules.h"
#include "framework/weights/name_pattern.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace blocks::weights;
  // load_mapping_file reads a path, as --map does: an anonymous in-memory file.
  const int fd = ::memfd_create("mapping_fuzz", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  Mapping mapping;
  try {
    mapping = load_mapping_file("/proc/self/fd/" + std::to_string(fd));
  } catch (const MappingError&) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  for (const auto& rule : mapping.rules) {
    try {
      const NamePattern pattern(rule.from);
      for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "lm_head.weight", "",
                               "transformer.h.11.attn.c_attn.bias"})
        (void)pattern.full_match(name);
    } catch (const PatternError&) {
    }
  }
  return 0;
}
