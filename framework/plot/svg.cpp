// curves_svg: the figure as SVG 1.1 text. Coordinates carry two decimals at most (a hundredth
// of a pixel), which keeps a long curve's points short.
#include <cstdio>
#include <sstream>

#include "framework/io/markup.h"
#include "framework/plot/figure.h"

namespace blocks::plot {
namespace {

std::string num(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", value);
  std::string s = text;
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string hex(Color c) {
  char text[8];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", c.r, c.g, c.b);
  return text;
}

void write_line(std::ostream& out, const Line& l) {
  out << "<line x1=\"" << num(l.from.x) << "\" y1=\"" << num(l.from.y) << "\" x2=\"" << num(l.to.x)
      << "\" y2=\"" << num(l.to.y) << "\" stroke=\"" << hex(l.color) << "\" stroke-width=\""
      << num(l.width) << "\"/>\n";
}

// A curve of one point has no length to stroke: it shows as a dot.
void write_curve(std::ostream& out, const Polyline& c) {
  if (c.points.size() == 1)
    out << "<circle cx=\"" << num(c.points[0].x) << "\" cy=\"" << num(c.points[0].y) << "\" r=\""
        << num(2 * c.width) << "\" fill=\"" << hex(c.color) << "\"/>\n";
  out << "<polyline id=\"" << c.id << "\" fill=\"none\" stroke=\"" << hex(c.color)
      << "\" stroke-width=\"" << num(c.width) << "\" stroke-linejoin=\"round\" points=\"";
  for (size_t i = 0; i < c.points.size(); ++i)
    out << (i ? " " : "") << num(c.points[i].x) << "," << num(c.points[i].y);
  out << "\"/>\n";
}

// `at` is the middle of the text's edge; SVG places the baseline, about 0.5 of a capital's
// height below the middle (the capital is `size` high, the font size 1.4 times that).
void write_text(std::ostream& out, const Text& t) {
  static const char* const anchors[] = {"start", "middle", "end"};
  const double font_size = t.size * 1.4;
  out << "<text x=\"" << num(t.at.x) << "\" y=\"" << num(t.at.y + t.size * 0.5) << "\" font-size=\""
      << num(font_size) << "\" fill=\"" << hex(t.color) << "\" text-anchor=\""
      << anchors[static_cast<int>(t.anchor)] << "\"";
  if (t.vertical) out << " transform=\"rotate(-90 " << num(t.at.x) << " " << num(t.at.y) << ")\"";
  out << ">" << io::escape_markup(t.text) << "</text>\n";
}

void write_rect(std::ostream& out, const char* cls, const Frame& f, const std::string& fill,
                Color stroke) {
  out << "<rect class=\"" << cls << "\" x=\"" << num(f.x) << "\" y=\"" << num(f.y) << "\" width=\""
      << num(f.width) << "\" height=\"" << num(f.height) << "\" fill=\"" << fill << "\" stroke=\""
      << hex(stroke) << "\" stroke-width=\"1\"/>\n";
}

void write_marker(std::ostream& out, const Marker& m) {
  out << "<circle cx=\"" << num(m.at.x) << "\" cy=\"" << num(m.at.y) << "\" r=\"" << num(m.radius)
      << "\" fill=\"" << hex(m.color) << "\"/>\n";
}

void write_legend(std::ostream& out, const Legend& legend) {
  out << "<g class=\"legend\">\n";
  write_rect(out, "legend", legend.box, hex(legend.fill), legend.stroke);
  for (const Line& l : legend.lines) write_line(out, l);
  for (const Marker& m : legend.markers) write_marker(out, m);
  for (const Text& t : legend.texts) write_text(out, t);
  out << "</g>\n";
}

void write_panel(std::ostream& out, const Panel& p) {
  out << "<g id=\"" << p.id << "\">\n";
  for (const Line& l : p.lines) write_line(out, l);
  write_rect(out, "frame", p.frame, "none", kFrameColor);
  for (const Polyline& c : p.curves) write_curve(out, c);
  for (const Marker& m : p.markers) write_marker(out, m);
  for (const Text& t : p.texts) write_text(out, t);
  if (p.legend) write_legend(out, *p.legend);
  out << "</g>\n";
}

}  // namespace

std::string curves_svg(const RunLog& run, int width, int height) {
  const Figure figure = build_figure(run, width, height);
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width
      << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << " " << height
      << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
      << "<rect width=\"" << width << "\" height=\"" << height << "\" fill=\""
      << hex(figure.background) << "\"/>\n";
  for (const Text& t : figure.texts) write_text(out, t);
  for (const Panel& p : figure.panels) write_panel(out, p);
  out << "</svg>\n";
  return out.str();
}

}  // namespace blocks::plot
