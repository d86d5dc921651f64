// A separate program linking the static libraries, as a user's program would: every type must
// be registered (self-registering static initialisers would silently vanish here).
#include <cstdio>
#include <string>
#include <vector>

#include "blocks/registry.h"
#include "framework/config/config.h"

int main() {
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"model", "language_model"},
      {"block", "transformer"},
      {"sequence", "fixed"},
      {"sequence", "repeat"},
      {"sequence", "pattern"},
      {"mixer", "attention"},
      {"mixer", "mamba"},
      {"mlp", "mlp"},
      {"mlp", "gated"},
      {"mlp", "moe"},
      {"normalization", "layer_norm"},
      {"normalization", "rms_norm"},
      {"normalization", "none"},
      {"initialization", "fill"},
      {"initialization", "zeros"},
      {"initialization", "ones"},
      {"initialization", "normal"},
      {"initialization", "uniform"},
      {"initialization", "kaiming"},
      {"initialization", "xavier"},
      {"initialization", "scaled_normal"},
      {"initialization", "magneto"},
      {"initialization", "s4d_real"},
      {"initialization", "mamba_dt"},
      {"rotary", "none"},
      {"rotary", "default"},
      {"rotary", "llama3"},
      {"rotary", "xpos"},
      {"peft", "none"},
      {"peft", "lora"}};
  int failed = 0;
  for (const auto& [kind, type] : expected) {
    if (!blocks::registry().find(kind, type)) {
      std::printf("missing %s type '%s'\n", kind.c_str(), type.c_str());
      ++failed;
    }
  }
  // A `block` slot also takes sequences.
  if (!blocks::registry().find("block", "repeat")) {
    std::printf("a block slot does not accept the repeat sequence\n");
    ++failed;
  }
  const size_t registered = blocks::registry().all_types().size();
  if (registered != expected.size()) {
    std::printf("registered %zu types, expected %zu: update this list\n", registered,
                expected.size());
    ++failed;
  }
  std::printf("%zu passed, %d failed\n", expected.size() + 2 - failed, failed);
  return failed ? 1 : 0;
}
