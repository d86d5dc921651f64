// Size arithmetic that cannot wrap: parameter counts, shapes, bytes and FLOPs come from
// users' widths (2^30 x 2^30 embeddings, 2^32-wide layers), whose products pass int64 and
// printed negative counts. Every count and shape is multiplied and summed through these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "framework/config/error.h"
#include "framework/config/mark.h"

namespace blocks::config {

// The largest count blocks represents, as messages name it.
inline constexpr std::string_view kCountLimit = "2^63 - 1";

// a * b and a + b when they fit in int64, else nullopt.
inline std::optional<int64_t> multiply(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}
inline std::optional<int64_t> add(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// A count that passed kCountLimit: `path` is the config path (with the parameter's name) where
// it did, `mark` where that config was written; both empty when the arithmetic knew no config.
class SizeOverflow : public Error {
 public:
  SizeOverflow(std::string path, Mark mark, const std::string& message)
      : Error(path.empty() ? message : path + ": " + message),
        path_(std::move(path)),
        mark_(std::move(mark)),
        message_(message) {}
  const std::string& path() const { return path_; }
  const Mark& mark() const { return mark_; }
  const std::string& message() const { return message_; }

 private:
  std::string path_;
  Mark mark_;
  std::string message_;
};

// a * b and a + b, or SizeOverflow saying "`what` (A x B) is more than 2^63 - 1".
int64_t checked_multiply(int64_t a, int64_t b, std::string_view what);
int64_t checked_add(int64_t a, int64_t b, std::string_view what);

}  // namespace blocks::config
