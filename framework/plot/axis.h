// An axis of a plot: a range on multiples of a 1-2-5 tick step (Heckbert's "nice numbers",
// Graphics Gems I, as matplotlib's MaxNLocator picks them) and the tick labels drawn on it.
#pragma once

#include <string>
#include <vector>

namespace blocks::plot {

struct Axis {
  double lo = 0, hi = 1;  // the range drawn, both multiples of step
  double step = 0.2;      // 1, 2 or 5 times a power of ten

  std::vector<double> ticks() const;
  // Where `value` lies along the axis: 0 at lo, 1 at hi.
  double fraction(double value) const { return (value - lo) / (hi - lo); }
};

// The smallest range on multiples of a nice step that holds [min, max], with about
// `target_ticks` intervals (never more than the nearest nice step allows). An empty or
// one-value range is widened so that the axis still has a length.
Axis nice_axis(double min, double max, int target_ticks);

// The axis's tick labels, all with the decimals the step needs ("0.0", "0.5", "1.0"), as a
// reader compares them down the axis. Axes of steps under 0.001 or values from a million share
// an exponent ("2e-4", "4e-4"; "0.5e-5", "1.0e-5") instead of long runs of zeros.
std::vector<std::string> tick_labels(const Axis& axis);

// `value` with up to `significant` significant digits and no trailing zeros ("3.21", "1e-5"):
// for text beside the curves.
std::string short_number(double value, int significant = 4);

}  // namespace blocks::plot
