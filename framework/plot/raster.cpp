// The canvas of raster.h and the figure drawn on it.
#include "framework/plot/raster.h"

#include <cmath>
#include <cstdlib>

namespace blocks::plot {

Canvas::Canvas(int width, int height, Color background)
    : width_(width), height_(height), rgb_(static_cast<size_t>(width) * height * 3) {
  for (size_t i = 0; i < rgb_.size(); i += 3)
    rgb_[i] = background.r, rgb_[i + 1] = background.g, rgb_[i + 2] = background.b;
}

Color Canvas::at(int x, int y) const {
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
}

void Canvas::set(int x, int y, Color c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  rgb_[i] = c.r, rgb_[i + 1] = c.g, rgb_[i + 2] = c.b;
}

void Canvas::fill_rect(int x, int y, int width, int height, Color c) {
  for (int j = y; j < y + height; ++j)
    for (int i = x; i < x + width; ++i) set(i, j, c);
}

void Canvas::line(Point from, Point to, Color c, int width) {
  // The brush is centred on the path: offsets -w/2 .. w-1-w/2 (for 2: the pixel and the one
  // before it), so a 2-pixel line straddles its coordinate as the SVG's stroke does.
  const int offset = width / 2;
  int x0 = static_cast<int>(std::lround(from.x)), y0 = static_cast<int>(std::lround(from.y));
  const int x1 = static_cast<int>(std::lround(to.x)), y1 = static_cast<int>(std::lround(to.y));
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  for (int error = dx + dy;;) {
    fill_rect(x0 - offset, y0 - offset, width, width, c);
    if (x0 == x1 && y0 == y1) return;
    const int twice = 2 * error;
    if (twice >= dy) error += dy, x0 += sx;
    if (twice <= dx) error += dx, y0 += sy;
  }
}

void Canvas::disc(Point centre, double radius, Color c) {
  const int x0 = static_cast<int>(std::floor(centre.x - radius));
  const int y0 = static_cast<int>(std::floor(centre.y - radius));
  for (int y = y0; y <= y0 + 2 * radius + 1; ++y)
    for (int x = x0; x <= x0 + 2 * radius + 1; ++x) {
      const double ex = x + 0.5 - centre.x, ey = y + 0.5 - centre.y;  // pixel centres
      if (ex * ex + ey * ey <= radius * radius) set(x, y, c);
    }
}

namespace {

// A rectangle's outline, 1 pixel wide, on the pixels its edges cover.
void outline(Canvas& canvas, const Frame& f, Color color) {
  const Point a{f.x, f.y}, b{f.x + f.width, f.y}, c{f.x + f.width, f.y + f.height},
      d{f.x, f.y + f.height};
  canvas.line(a, b, color, 1), canvas.line(b, c, color, 1);
  canvas.line(c, d, color, 1), canvas.line(d, a, color, 1);
}

int pixels(double width) { return std::max(1, static_cast<int>(std::lround(width))); }

void draw_legend(Canvas& canvas, const Legend& legend) {
  const Frame& b = legend.box;
  canvas.fill_rect(int(std::lround(b.x)), int(std::lround(b.y)), int(std::lround(b.width)),
                   int(std::lround(b.height)), legend.fill);
  outline(canvas, b, legend.stroke);
  for (const Line& l : legend.lines) canvas.line(l.from, l.to, l.color, pixels(l.width));
  for (const Marker& m : legend.markers) canvas.disc(m.at, m.radius, m.color);
  for (const Text& t : legend.texts) draw_text(canvas, t);
}

void draw_panel(Canvas& canvas, const Panel& p) {
  for (const Line& l : p.lines) canvas.line(l.from, l.to, l.color, pixels(l.width));
  outline(canvas, p.frame, kFrameColor);
  for (const Polyline& c : p.curves) {
    if (c.points.size() == 1) canvas.disc(c.points[0], 2 * c.width, c.color);  // a lone point
    for (size_t i = 1; i < c.points.size(); ++i)
      canvas.line(c.points[i - 1], c.points[i], c.color, pixels(c.width));
  }
  for (const Marker& m : p.markers) canvas.disc(m.at, m.radius, m.color);
  for (const Text& t : p.texts) draw_text(canvas, t);
  if (p.legend) draw_legend(canvas, *p.legend);
}

}  // namespace

Canvas rasterize(const Figure& figure) {
  Canvas canvas(figure.width, figure.height, figure.background);
  for (const Panel& p : figure.panels) draw_panel(canvas, p);
  for (const Text& t : figure.texts) draw_text(canvas, t);
  return canvas;
}

}  // namespace blocks::plot
