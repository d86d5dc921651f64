// The curves picture as drawing primitives in pixel coordinates (y down), laid out once and
// then written as SVG (svg.cpp) or rasterized (raster.h), so that both show the same picture.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/plot/curves.h"

namespace blocks::plot {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Color&) const = default;
};

struct Point {
  double x = 0, y = 0;
};

// The plot area of a panel, inside its axes.
struct Frame {
  double x = 0, y = 0, width = 0, height = 0;
};

struct Line {
  Point from, to;
  Color color;
  double width = 1;
};

// A series' curve; `id` names it in the SVG ("train_loss").
struct Polyline {
  std::string id;
  std::vector<Point> points;
  Color color;
  double width = 2;
};

struct Marker {  // a filled dot
  Point at;
  double radius = 3;
  Color color;
};

enum class Anchor { start, middle, end };

// Text on one line, `at` the middle of its left edge, centre or right edge (by `anchor`);
// `vertical` text reads upwards, turned about `at`. `size` is the height of a capital letter
// in pixels, the bitmap font's 7 rows times its scale.
struct Text {
  std::string text;
  Point at;
  int size = 14;
  Anchor anchor = Anchor::start;
  bool vertical = false;
  Color color{40, 40, 40};
};

// The names of a panel's curves in a box drawn over them, each beside a sample of its line.
struct Legend {
  Frame box;
  Color fill{255, 255, 255}, stroke{200, 200, 200};
  std::vector<Line> lines;
  std::vector<Marker> markers;
  std::vector<Text> texts;
};

// Drawn in the order of its fields: grid and ticks, the frame, curves, their markers, the
// texts around the frame, the legend.
struct Panel {
  std::string id;  // "loss" or "lr"
  Frame frame;
  std::vector<Line> lines;
  std::vector<Polyline> curves;
  std::vector<Marker> markers;
  std::vector<Text> texts;
  std::optional<Legend> legend;
};

struct Figure {
  int width = 900, height = 600;
  Color background;
  std::vector<Panel> panels;
  std::vector<Text> texts;  // title and summary
};

// The picture of `run` in a width x height canvas; throws blocks::Error below 200 x 150, where
// the axes' labels no longer fit.
Figure build_figure(const RunLog& run, int width, int height);

// The colours of the frame and the curves (the tests look for the curves in the picture).
inline constexpr Color kFrameColor{40, 40, 40};
Color train_color();
Color val_color();
Color lr_color();

}  // namespace blocks::plot
