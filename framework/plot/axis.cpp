// Nice axis ranges and their tick labels (see axis.h).
#include "framework/plot/axis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace blocks::plot {
namespace {

// Ratios within this of a whole number count as whole: 0.3 / 0.1 is 2.9999999999999996.
constexpr double kSlack = 1e-9;

double nice_step(double span, int target_ticks) {
  const double raw = span / std::max(target_ticks, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0})
    if (m * magnitude >= raw * (1 - kSlack)) return m * magnitude;
  return 10 * magnitude;
}

int exponent_of(double value) { return static_cast<int>(std::floor(std::log10(value) + kSlack)); }

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

}  // namespace

Axis nice_axis(double min, double max, int target_ticks) {
  if (!std::isfinite(min) || !std::isfinite(max) || min > max) min = 0, max = 1;  // no data
  if (max - min <= 1e-12 * std::max({std::abs(min), std::abs(max), 1e-300})) {
    const double half = min == 0 ? 1 : std::abs(min) * 0.1;
    min -= half, max += half;
  }
  Axis axis;
  axis.step = nice_step(max - min, target_ticks);
  axis.lo = std::floor(min / axis.step + kSlack) * axis.step;
  axis.hi = std::ceil(max / axis.step - kSlack) * axis.step;
  return axis;
}

std::vector<double> Axis::ticks() const {
  const int intervals = static_cast<int>(std::lround((hi - lo) / step));
  std::vector<double> values;
  for (int i = 0; i <= intervals; ++i) {
    const double value = lo + i * step;
    values.push_back(std::abs(value) < step * 1e-6 ? 0.0 : value);  // no "-0.0" or "1e-17"
  }
  return values;
}

std::vector<std::string> tick_labels(const Axis& axis) {
  const int step_exponent = exponent_of(axis.step);
  const double top = std::max(std::abs(axis.lo), std::abs(axis.hi));
  const bool scientific = step_exponent < -3 || top >= 1e6;
  const int exponent = scientific ? exponent_of(top) : 0;
  const int decimals = std::max(0, exponent - step_exponent);
  std::vector<std::string> labels;
  for (const double tick : axis.ticks()) {
    if (!scientific)
      labels.push_back(fixed(tick, decimals));
    else if (tick == 0)
      labels.push_back("0");
    else
      labels.push_back(fixed(tick / std::pow(10.0, exponent), decimals) + "e" +
                       std::to_string(exponent));
  }
  return labels;
}

std::string short_number(double value, int significant) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*g", significant, value);
  std::string s = text;
  // printf writes "1e-05"; "1e-5" reads as well and is shorter.
  const auto e = s.find('e');
  if (e != std::string::npos) {
    size_t digits = e + 1;
    if (digits < s.size() && (s[digits] == '-' || s[digits] == '+')) ++digits;
    while (digits + 1 < s.size() && s[digits] == '0') s.erase(digits, 1);
    if (s[e + 1] == '+') s.erase(e + 1, 1);
  }
  return s;
}

}  // namespace blocks::plot
