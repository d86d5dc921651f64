#include "framework/weights/load.h"

#include <sstream>

#include "framework/weights/mapping.h"

namespace blocks::weights {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string LoadReport::format() const {
  std::ostringstream out;
  auto list = [&](const char* title, const std::vector<std::string>& items) {
    if (items.empty()) return;
    out << title << " (" << items.size() << "):\n";
    for (const auto& item : items) out << "  " << item << "\n";
  };
  list("missing from the checkpoint", missing);
  list("unexpected in the checkpoint", unexpected);
  list("shape mismatches", mismatched);
  list("non-finite values (NaN or Inf) loaded into", non_finite);
  return out.str();
}

LoadReport load_safetensors(const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                            const std::vector<std::string>& files, bool strict,
                            const std::function<void(size_t, size_t)>& progress) {
  return load_mapped(parameters, files, identity_mapping(), strict, progress);
}

}  // namespace blocks::weights
