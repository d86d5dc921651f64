#include "framework/config/checked.h"

namespace blocks::config {

namespace {

[[noreturn]] void overflow(int64_t a, int64_t b, std::string_view op, std::string_view what) {
  throw SizeOverflow({}, {},
                     std::string(what) + " (" + std::to_string(a) + std::string(op) +
                         std::to_string(b) + ") is more than " + std::string(kCountLimit));
}

}  // namespace

int64_t checked_multiply(int64_t a, int64_t b, std::string_view what) {
  if (auto out = multiply(a, b)) return *out;
  overflow(a, b, " x ", what);
}

int64_t checked_add(int64_t a, int64_t b, std::string_view what) {
  if (auto out = add(a, b)) return *out;
  overflow(a, b, " + ", what);
}

}  // namespace blocks::config
