// A small RGB canvas that draws the curves figure (figure.h) pixel by pixel for the PNG: lines
// with a square brush along Bresenham's path, discs, and text in a built-in 5 x 7 bitmap font
// (font.cpp). No anti-aliasing: the picture is for reading numbers off, and stays exact and
// deterministic.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/plot/figure.h"

namespace blocks::plot {

class Canvas {
 public:
  Canvas(int width, int height, Color background);

  int width() const { return width_; }
  int height() const { return height_; }
  const std::vector<uint8_t>& rgb() const { return rgb_; }  // rows top down, 3 bytes a pixel
  Color at(int x, int y) const;

  void set(int x, int y, Color c);  // outside the canvas: nothing
  void fill_rect(int x, int y, int width, int height, Color c);
  // A line `width` pixels thick: a width x width square stamped at each pixel of its path.
  void line(Point from, Point to, Color c, int width);
  void disc(Point centre, double radius, Color c);

 private:
  int width_, height_;
  std::vector<uint8_t> rgb_;
};

// Draws `text` in the bitmap font, at the scale its size asks for (size / 7, at least 1).
void draw_text(Canvas& canvas, const Text& text);

// The figure drawn: background, then each panel's lines, frame, curves, markers and texts,
// then the figure's texts.
Canvas rasterize(const Figure& figure);

}  // namespace blocks::plot
