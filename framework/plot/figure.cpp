// build_figure: where everything of the curves picture goes. Sizes derive from the bitmap
// font's scale (raster.h), so the PNG's text fits the margins and the SVG's fits with room.
#include "framework/plot/figure.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/plot/axis.h"

namespace blocks::plot {
namespace {

constexpr Color kInk{40, 40, 40}, kMuted{110, 110, 110}, kGrid{228, 228, 228};

// Pixel sizes of one figure, all from the font scale.
struct Metrics {
  int scale = 2;
  double char_width() const { return 6.0 * scale; }  // 5 columns and a gap
  double char_height() const { return 7.0 * scale; }
  double gap() const { return 4.0 * scale; }
  double tick() const { return 3.0 * scale; }
  double width_of(const std::string& text, int size_scale = 0) const {
    const int s = size_scale ? size_scale : scale;
    return text.empty() ? 0 : 6.0 * s * static_cast<double>(text.size()) - s;
  }
};

struct Axes {
  Axis x, loss, lr;
};

// One value range over several series: {min, max}, or {inf, -inf} when all are empty.
std::pair<double, double> extent(std::initializer_list<const Series*> series, bool of_steps) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const Series* s : series)
    for (const auto& [step, value] : s->points) {
      const double v = of_steps ? step : value;
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
  return {lo, hi};
}

// A little room above and below, so that a curve never runs along the frame.
Axis value_axis(std::pair<double, double> range, int target_ticks) {
  const double pad = std::isfinite(range.first) ? 0.03 * (range.second - range.first) : 0;
  return nice_axis(range.first - pad, range.second + pad, target_ticks);
}

Axes axes_of(const RunLog& run, const Metrics& m, int width) {
  Axes axes;
  const int x_ticks = std::clamp(static_cast<int>(width / (12 * m.char_width())), 2, 10);
  // Steps count from 0, and are whole: a range of at least one step per tick never asks for
  // 0.2 of a step.
  auto steps = extent({&run.train_loss, &run.val_loss, &run.lr}, true);
  if (std::isfinite(steps.first)) {
    steps.first = std::min(steps.first, 0.0);
    steps.second = std::max(steps.second, steps.first + x_ticks);
  }
  axes.x = nice_axis(steps.first, steps.second, x_ticks);
  axes.loss = value_axis(extent({&run.train_loss, &run.val_loss}, false), 5);
  // A schedule reads against zero (warmup starts there, decay ends near it).
  auto lr = extent({&run.lr}, false);
  if (std::isfinite(lr.first)) lr.first = std::min(lr.first, 0.0);
  axes.lr = value_axis(lr, 4);
  if (axes.lr.lo < 0 && lr.first >= 0) axes.lr.lo = 0;  // the padding never crosses zero
  return axes;
}

size_t longest(const std::vector<std::string>& labels) {
  size_t n = 0;
  for (const auto& label : labels) n = std::max(n, label.size());
  return n;
}

Point to_pixel(const Frame& f, const Axis& x, const Axis& y, double step, double value) {
  return {f.x + x.fraction(step) * f.width, f.y + (1 - y.fraction(value)) * f.height};
}

// A curve of very many points keeps, per pixel column, its first, lowest, highest and last
// points: the drawing is the same and the SVG stays small.
std::vector<Point> thinned(const std::vector<Point>& points, double frame_width) {
  if (points.size() <= 4 * static_cast<size_t>(std::max(frame_width, 1.0))) return points;
  std::vector<Point> kept;
  for (size_t begin = 0; begin < points.size();) {
    size_t end = begin;
    const long column = std::lround(points[begin].x);
    size_t low = begin, high = begin;
    for (; end < points.size() && std::lround(points[end].x) == column; ++end) {
      if (points[end].y > points[low].y) low = end;  // y grows downwards
      if (points[end].y < points[high].y) high = end;
    }
    std::vector<size_t> picks = {begin, low, high, end - 1};
    std::sort(picks.begin(), picks.end());
    picks.erase(std::unique(picks.begin(), picks.end()), picks.end());
    for (const size_t i : picks) kept.push_back(points[i]);
    begin = end;
  }
  return kept;
}

Polyline curve(const std::string& id, const Series& s, const Frame& f, const Axis& x, const Axis& y,
               Color color, double width) {
  Polyline line{id, {}, color, width};
  for (const auto& [step, value] : s.points) line.points.push_back(to_pixel(f, x, y, step, value));
  line.points = thinned(line.points, f.width);
  return line;
}

// Grid lines and ticks at every x tick, labels under the frame.
void add_x_axis(Panel& p, const Axis& x, const Metrics& m) {
  const auto labels = tick_labels(x);
  const auto ticks = x.ticks();
  const Frame& f = p.frame;
  for (size_t i = 0; i < ticks.size(); ++i) {
    const double px = f.x + x.fraction(ticks[i]) * f.width;
    if (i > 0 && i + 1 < ticks.size()) p.lines.push_back({{px, f.y}, {px, f.y + f.height}, kGrid});
    p.lines.push_back({{px, f.y + f.height}, {px, f.y + f.height + m.tick()}, kInk});
    const double label_y = f.y + f.height + m.tick() + m.gap() + m.char_height() / 2;
    p.texts.push_back({labels[i], {px, label_y}, int(m.char_height()), Anchor::middle});
  }
}

// Grid lines and ticks at every y tick, labels left of the frame, the axis name beside them.
void add_y_axis(Panel& p, const Axis& y, const std::string& name, const std::string& short_name,
                double name_x, const Metrics& m) {
  const auto labels = tick_labels(y);
  const auto ticks = y.ticks();
  const Frame& f = p.frame;
  for (size_t i = 0; i < ticks.size(); ++i) {
    const double py = f.y + (1 - y.fraction(ticks[i])) * f.height;
    if (i > 0 && i + 1 < ticks.size()) p.lines.push_back({{f.x, py}, {f.x + f.width, py}, kGrid});
    p.lines.push_back({{f.x - m.tick(), py}, {f.x, py}, kInk});
    p.texts.push_back(
        {labels[i], {f.x - m.tick() - m.gap(), py}, int(m.char_height()), Anchor::end});
  }
  // A name longer than a short panel would run into the next one: then its short form.
  const std::string shown = m.width_of(name) <= f.height + 2 * m.gap() ? name : short_name;
  p.texts.push_back(
      {shown, {name_x, f.y + f.height / 2}, int(m.char_height()), Anchor::middle, true, kInk});
}

// A panel without points says so, instead of showing an empty frame that looks broken.
void add_empty_note(Panel& p, const std::string& note, const Metrics& m) {
  const Frame& f = p.frame;
  p.texts.push_back({note,
                     {f.x + f.width / 2, f.y + f.height / 2},
                     int(m.char_height()),
                     Anchor::middle,
                     false,
                     kMuted});
}

// Where the frames and the text around them go.
struct Layout {
  Frame loss, lr;
  double name_x = 0;                 // centre of the vertical axis names
  double title_y = 0, header_y = 0;  // middles of the title and the summary line
  int title_scale = 3;
};

Layout layout_of(const Metrics& m, int width, int height, size_t y_label_chars) {
  Layout l;
  l.title_scale = m.scale + 1;
  const double title_height = 7.0 * l.title_scale;
  l.title_y = 2 * m.gap() + title_height / 2;
  l.header_y = l.title_y + title_height / 2 + 2 * m.gap() + m.char_height() / 2;
  const double top = l.header_y + m.char_height() / 2 + 2 * m.gap();
  const double x_labels = m.tick() + m.gap() + m.char_height();  // under each frame
  const double between = x_labels + 4 * m.gap();
  const double bottom = x_labels + 2 * m.gap() + m.char_height() + 2 * m.gap();  // and "step"
  l.name_x = 2 * m.gap() + m.char_height() / 2;
  const double left = l.name_x + m.char_height() / 2 + 2 * m.gap() +
                      static_cast<double>(y_label_chars) * m.char_width() + m.gap() + m.tick();
  const double right = 2 * m.gap() + 3 * m.char_width();  // half of the last x label
  const double frames = height - top - between - bottom;
  const double frame_width = width - left - right;
  // The lr panel is tall enough for its name ("learning rate") at the default size.
  l.loss = {left, top, frame_width, std::round(frames * 0.58)};
  l.lr = {left, top + l.loss.height + between, frame_width, frames - l.loss.height};
  return l;
}

Panel loss_panel(const RunLog& run, const Axes& axes, const Layout& l, const Metrics& m) {
  Panel p{"loss", l.loss, {}, {}, {}, {}, {}};
  add_x_axis(p, axes.x, m);
  add_y_axis(p, axes.loss, "loss", "loss", l.name_x, m);
  if (!run.val_loss.points.empty()) {
    p.curves.push_back(
        curve("val_loss", run.val_loss, p.frame, axes.x, axes.loss, val_color(), m.scale * 0.75));
    for (const Point& at : p.curves.back().points)
      p.markers.push_back({at, 2.0 * m.scale, val_color()});
  }
  // Drawn last: the curve the run is about stays on top where the two cross.
  p.curves.push_back(
      curve("train_loss", run.train_loss, p.frame, axes.x, axes.loss, train_color(), m.scale));
  if (run.train_loss.points.empty() && run.val_loss.points.empty())
    add_empty_note(p, "no loss logged yet", m);
  return p;
}

Panel lr_panel(const RunLog& run, const Axes& axes, const Layout& l, const Metrics& m) {
  Panel p{"lr", l.lr, {}, {}, {}, {}, {}};
  add_x_axis(p, axes.x, m);
  add_y_axis(p, axes.lr, "learning rate", "lr", l.name_x, m);
  p.curves.push_back(curve("lr", run.lr, p.frame, axes.x, axes.lr, lr_color(), m.scale));
  if (run.lr.points.empty()) add_empty_note(p, "no learning rate logged", m);
  const Frame& f = p.frame;
  const double step_y = f.y + f.height + m.tick() + 2 * m.gap() + 1.5 * m.char_height() + m.gap();
  p.texts.push_back({"step", {f.x + f.width / 2, step_y}, int(m.char_height()), Anchor::middle});
  return p;
}

// "step 1000: loss 3.21, lr 6e-4; val loss 3.4 at step 1000", the numbers a reader looks up.
std::string summary(const RunLog& run) {
  if (run.train_loss.points.empty()) return "";
  const auto& [step, loss] = run.train_loss.points.back();
  std::string text = "step " + short_number(step, 12) + ": loss " + short_number(loss);
  if (!run.lr.points.empty()) text += ", lr " + short_number(run.lr.points.back().second, 3);
  if (!run.val_loss.points.empty()) {
    const auto& [val_step, val] = run.val_loss.points.back();
    text += "; val loss " + short_number(val) + " at step " + short_number(val_step, 12);
  }
  return text;
}

// How many of the panel's curve points fall in `box`.
int points_in(const Panel& p, const Frame& box) {
  int n = 0;
  for (const Polyline& c : p.curves)
    for (const Point& q : c.points)
      n += q.x >= box.x && q.x <= box.x + box.width && q.y >= box.y && q.y <= box.y + box.height;
  return n;
}

// The legend's box in the frame's corner that hides the fewest points (as matplotlib's
// loc="best" picks), upper right first: where a falling loss leaves room.
Frame legend_box(const Panel& p, double width, double height, const Metrics& m) {
  const Frame& f = p.frame;
  const double left = f.x + m.gap(), right = f.x + f.width - m.gap() - width;
  const double top = f.y + m.gap(), bottom = f.y + f.height - m.gap() - height;
  Frame best{right, top, width, height};
  int fewest = points_in(p, best);
  for (const Point corner : {Point{left, top}, Point{right, bottom}, Point{left, bottom}}) {
    const Frame box{corner.x, corner.y, width, height};
    if (const int n = points_in(p, box); n < fewest) best = box, fewest = n;
  }
  return best;
}

// One row per curve: a short line (with a dot for markers) and the curve's name.
void add_legend(Panel& p, bool with_val, const Metrics& m) {
  struct Row {
    std::string name;
    Color color;
    double width;
    bool dot;
  };
  std::vector<Row> rows = {{"train loss", train_color(), double(m.scale), false}};
  if (with_val) rows.push_back({"validation loss", val_color(), m.scale * 0.75, true});
  const double sample = 4 * m.char_width(), pad = 2 * m.gap(),
               row_height = m.char_height() + m.gap();
  double names = 0;
  for (const Row& r : rows) names = std::max(names, m.width_of(r.name));
  Legend legend;
  legend.box = legend_box(p, pad + sample + m.gap() + names + pad,
                          pad + static_cast<double>(rows.size()) * row_height - m.gap() + pad, m);
  double y = legend.box.y + pad + m.char_height() / 2;
  for (const Row& r : rows) {
    const double x = legend.box.x + pad;
    legend.lines.push_back({{x, y}, {x + sample, y}, r.color, r.width});
    if (r.dot) legend.markers.push_back({{x + sample / 2, y}, 2.0 * m.scale, r.color});
    legend.texts.push_back({r.name, {x + sample + m.gap(), y}, int(m.char_height())});
    y += row_height;
  }
  p.legend = legend;
}

// `text` cut to `room` pixels at font scale `scale`, with "..." where it was cut.
std::string fitted(const std::string& text, double room, int scale) {
  const size_t fits = static_cast<size_t>(std::max(0.0, (room + scale) / (6.0 * scale)));
  if (text.size() <= fits) return text;
  return fits > 3 ? text.substr(0, fits - 3) + "..." : text.substr(0, fits);
}

void add_header(Figure& figure, const RunLog& run, const Layout& l, const Metrics& m) {
  const std::string title = (run.name.empty() ? "training run" : run.name) + ": training curves";
  const double room = figure.width - l.loss.x - 2 * m.gap();
  figure.texts.push_back({fitted(title, room, l.title_scale),
                          {l.loss.x, l.title_y},
                          7 * l.title_scale,
                          Anchor::start});
  if (const std::string line = summary(run); !line.empty())
    figure.texts.push_back({fitted(line, room, m.scale),
                            {l.loss.x, l.header_y},
                            int(m.char_height()),
                            Anchor::start,
                            false,
                            kMuted});
}

// Font scale 2 (14-pixel capitals) at the default 900 x 600; 1 for small pictures.
int font_scale(int width, int height) {
  return std::clamp(std::min(width / 450, height / 300), 1, 3);
}

}  // namespace

Figure build_figure(const RunLog& run, int width, int height) {
  if (width < 200 || height < 150)
    throw Error("a curves picture needs at least 200 x 150 pixels; asked for " +
                std::to_string(width) + " x " + std::to_string(height));
  Metrics m;
  m.scale = font_scale(width, height);
  const Axes axes = axes_of(run, m, width);
  const size_t chars = std::max(longest(tick_labels(axes.loss)), longest(tick_labels(axes.lr)));
  const Layout l = layout_of(m, width, height, chars);
  Figure figure{width, height, {255, 255, 255}, {}, {}};
  figure.panels.push_back(loss_panel(run, axes, l, m));
  figure.panels.push_back(lr_panel(run, axes, l, m));
  add_legend(figure.panels[0], !run.val_loss.points.empty(), m);
  add_header(figure, run, l, m);
  return figure;
}

Color train_color() { return {31, 119, 180}; }
Color val_color() { return {255, 127, 14}; }
Color lr_color() { return {44, 160, 44}; }

}  // namespace blocks::plot
