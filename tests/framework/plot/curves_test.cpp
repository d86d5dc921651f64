// framework/plot/curves.h and `blockc plot`: a trainer's log read into series (resumes, repeated
// steps, a line cut by kill -9), the SVG's curves where the axes put them, and the PNG decoded
// by Pillow (Debian's python3-pil) with the curve's colour where the curve passes.
#include "framework/plot/curves.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "framework/plot/axis.h"
#include "tests/support/blockc_run.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

namespace blocks::testing {
namespace {

using plot::RunLog;
using Points = std::vector<std::pair<double, double>>;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// stdout of `command`, and its exit status in `status`.
std::string output_of(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  for (size_t n; pipe && (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
    out.append(buffer, n);
  const int code = pipe ? ::pclose(pipe) : -1;
  if (status) *status = code;
  return out;
}

std::string log_error(const std::string& path) {
  return message_of<plot::LogError>([&] { plot::read_run_log(path); });
}

// A run that resumed from its step-3 checkpoint after logging step 5, then was killed mid-line.
constexpr const char* kResumedLog =
    R"({"event": "start", "config": "tiny.yaml"}
{"step": 1, "loss": 4.0, "lr": 0.0001, "grad_norm": 0.9, "tokens": 1024, "tokens_per_s": 5120.5, "mfu": 0.02, "time_s": 0.2}
{"step": 2, "loss": 3.5, "lr": 0.0002, "grad_norm": 0.8, "tokens": 2048, "tokens_per_s": 5120.5, "mfu": 0.02, "time_s": 0.4}
{"step": 3, "loss": 3.0, "lr": 0.0003, "grad_norm": 0.7, "tokens": 3072, "tokens_per_s": 5120.5, "mfu": 0.02, "time_s": 0.6}
{"step": 4, "loss": 2.9, "lr": 0.0004}
{"step": 4, "val_loss": 3.1}
{"step": 5, "loss": 2.8, "lr": 0.0005}
{"event": "resume", "step": 3}
{"step": 4, "loss": 2.7, "lr": 0.00045}

{"step": 4, "val_loss": 3.0}
{"step": 5, "lo)";

TEST(RunLog, LastLineOfAStepWinsAndAResumeDropsTheAbandonedSteps) {
  TempDir dir;
  dir.write("tiny/log.jsonl", kResumedLog);
  const RunLog run = plot::read_run_log(dir.at("tiny"));
  EXPECT_EQ(run.name, "tiny");
  EXPECT_EQ(run.path, dir.at("tiny") + "/log.jsonl");
  EXPECT_EQ(run.train_loss.points, (Points{{1, 4.0}, {2, 3.5}, {3, 3.0}, {4, 2.7}}));
  EXPECT_EQ(run.lr.points, (Points{{1, 1e-4}, {2, 2e-4}, {3, 3e-4}, {4, 4.5e-4}}));
  EXPECT_EQ(run.val_loss.points, (Points{{4, 3.0}}));
  ASSERT_EQ(run.warnings.size(), 1u);
  EXPECT_EQ(run.warnings[0], run.path +
                                 ":12: skipped the last line, cut short (the writer was probably "
                                 "killed mid-line)");
}

TEST(RunLog, RepeatedStepsWithoutAResumeKeepTheirLastLine) {
  TempDir dir;
  const std::string file = dir.write("run/log.jsonl",
                                     "{\"step\": 2, \"loss\": 5}\n{\"step\": 1, \"loss\": 6}\n"
                                     "{\"step\": 2, \"loss\": 4}\n");
  const RunLog run = plot::read_run_log(file);  // the file itself names the run too
  EXPECT_EQ(run.name, "run");
  EXPECT_EQ(run.train_loss.points, (Points{{1, 6}, {2, 4}}));
  EXPECT_TRUE(run.lr.points.empty());
  EXPECT_TRUE(run.warnings.empty());
}

TEST(RunLog, NullLossesAreSkippedWithAWarning) {
  TempDir dir;
  const std::string file = dir.write("log.jsonl",
                                     "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": null}\n"
                                     "{\"step\": 3, \"val_loss\": null}\n");
  const RunLog run = plot::read_run_log(file);
  EXPECT_EQ(run.train_loss.points, (Points{{1, 2}}));
  EXPECT_TRUE(run.val_loss.points.empty());
  ASSERT_EQ(run.warnings.size(), 1u);
  EXPECT_EQ(run.warnings[0], file +
                                 ":2: 2 line(s) have a null value (a NaN or infinity); those "
                                 "points are not drawn");
}

TEST(RunLog, MalformedLinesNameTheirLineAndWhatIsWrong) {
  TempDir dir;
  const std::string good = "{\"step\": 1, \"loss\": 2}\n";
  auto log = [&](const std::string& text) { return dir.write("log.jsonl", good + text); };
  std::string file = log("{\"step\": 2, \"loss\": 2\n{\"step\": 3, \"loss\": 2}\n");
  EXPECT_EQ(log_error(file), file +
                                 ":2: not a JSON object (column 22: syntax error while "
                                 "parsing object - unexpected end of input; expected '}')");
  file = log("{\"step\": 2, \"loss\": \"abc\"}\n");
  EXPECT_EQ(log_error(file), file + ":2: \"loss\" is the string \"abc\"; expected a number");
  file = log("[1, 2]\n");
  EXPECT_EQ(log_error(file), file + ":2: expected a JSON object, found array");
  file = log("{\"loss\": 2}\n");
  EXPECT_EQ(log_error(file), file + ":2: a line with \"loss\" needs a \"step\"");
  file = log("{\"step\": null, \"val_loss\": 2}\n");
  EXPECT_EQ(log_error(file), file + ":2: \"step\" is null; expected a number");
  // Only a last line without its newline may be a cut one; with it, the writer finished it.
  file = log("{\"step\": 2, \"lo\n");
  EXPECT_NE(log_error(file).find(file + ":2: not a JSON object"), std::string::npos);
}

TEST(RunLog, AFolderWithoutALogSaysWhereItLooked) {
  TempDir dir;
  EXPECT_EQ(log_error(dir.path().string()),
            dir.at("log.jsonl") + ": no such file; " + dir.path().string() +
                " is not a training run's folder, or its run has not logged a step yet");
  EXPECT_EQ(log_error(dir.at("absent")),
            dir.at("absent") +
                ": no such run folder or log file (a run folder holds the "
                "log.jsonl that training writes)");
}

TEST(Axis, NiceStepsOfOneTwoOrFiveEncloseTheData) {
  auto same = [](const plot::Axis& a, double lo, double hi, double step) {
    return std::abs(a.lo - lo) < 1e-12 && std::abs(a.hi - hi) < 1e-12 &&
           std::abs(a.step - step) < 1e-15;
  };
  EXPECT_TRUE(same(plot::nice_axis(0.3, 0.7, 4), 0.3, 0.7, 0.1));  // 0.3 / 0.1 is 2.999...
  EXPECT_TRUE(same(plot::nice_axis(10, 100, 6), 0, 100, 20));
  EXPECT_TRUE(same(plot::nice_axis(2.234, 4.566, 5), 2, 5, 0.5));
  EXPECT_TRUE(same(plot::nice_axis(3, 3, 5), 2.6, 3.4, 0.2));  // one value still has a length
  EXPECT_EQ(plot::tick_labels(plot::nice_axis(0, 1, 5)),
            (std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}));
  EXPECT_EQ(plot::tick_labels(plot::nice_axis(0, 8e-4, 4)),
            (std::vector<std::string>{"0", "2e-4", "4e-4", "6e-4", "8e-4"}));
  EXPECT_EQ(
      plot::tick_labels(plot::nice_axis(0, 3e-5, 6)),
      (std::vector<std::string>{"0", "0.5e-5", "1.0e-5", "1.5e-5", "2.0e-5", "2.5e-5", "3.0e-5"}));
  EXPECT_EQ(plot::tick_labels(plot::nice_axis(0, 2e6, 4)),
            (std::vector<std::string>{"0", "0.5e6", "1.0e6", "1.5e6", "2.0e6"}));
  EXPECT_EQ(plot::short_number(1e-5), "1e-5");
  EXPECT_EQ(plot::short_number(3.21), "3.21");
}

// Train steps 10..100, loss 4.5 down to 2.3, lr up to 6e-4, two evaluations: the axes are
// steps 0..100, loss 2..5 (the data padded by 3%, then nice steps of 0.5), lr 0..8e-4.
RunLog sample_run() {
  RunLog run;
  run.name = "sample";
  for (int i = 1; i <= 10; ++i) {
    run.train_loss.points.push_back({10.0 * i, 4.5 - 2.2 * (i - 1) / 9.0});
    run.lr.points.push_back({10.0 * i, 6e-4 * std::min(1.0, i / 3.0)});
  }
  run.val_loss.points = {{50, 3.4}, {100, 2.6}};
  return run;
}

struct Frame {
  double x = 0, y = 0, width = 0, height = 0;
};

// The SVG text of the group `<g id="id">`.
std::string group(const std::string& svg, const std::string& id) {
  const auto begin = svg.find("<g id=\"" + id + "\">");
  EXPECT_NE(begin, std::string::npos) << id;
  return begin == std::string::npos ? "" : svg.substr(begin, svg.find("</g>", begin) - begin);
}

double attribute(const std::string& element, const std::string& name) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(element, m, std::regex(" " + name + "=\"([-0-9.]+)\""))) << name;
  return m.empty() ? NAN : std::stod(m[1]);
}

Frame frame_of(const std::string& panel) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(panel, m, std::regex("<rect class=\"frame\"[^>]*>")));
  const std::string rect = m.empty() ? "" : m.str();
  return {attribute(rect, "x"), attribute(rect, "y"), attribute(rect, "width"),
          attribute(rect, "height")};
}

std::vector<std::pair<double, double>> polyline(const std::string& panel, const std::string& id) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(panel, m,
                                std::regex("<polyline id=\"" + id + "\"[^>]* points=\"([^\"]*)\"")))
      << id;
  std::vector<std::pair<double, double>> points;
  std::istringstream in(m.empty() ? "" : m.str(1));
  for (std::string pair; in >> pair;) {
    const auto comma = pair.find(',');
    points.push_back({std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1))});
  }
  return points;
}

// The data's points in pixels: x from lo..hi across the frame, y from lo at the bottom.
Points expected_pixels(const Points& data, const Frame& f, double x_lo, double x_hi, double y_lo,
                       double y_hi) {
  Points pixels;
  for (const auto& [step, value] : data)
    pixels.push_back({f.x + (step - x_lo) / (x_hi - x_lo) * f.width,
                      f.y + f.height - (value - y_lo) / (y_hi - y_lo) * f.height});
  return pixels;
}

void expect_near(const Points& got, const Points& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].first, want[i].first, 0.0051) << "point " << i;  // two decimals
    EXPECT_NEAR(got[i].second, want[i].second, 0.0051) << "point " << i;
  }
}

TEST(CurvesSvg, CurvesLieWhereTheAxesPutTheirValues) {
  const RunLog run = sample_run();
  const std::string svg = plot::curves_svg(run);
  const std::string loss = group(svg, "loss"), lr = group(svg, "lr");
  const Frame loss_frame = frame_of(loss), lr_frame = frame_of(lr);
  EXPECT_EQ(loss_frame.x, lr_frame.x);  // the panels share the step axis
  EXPECT_EQ(loss_frame.width, lr_frame.width);
  EXPECT_LT(loss_frame.y + loss_frame.height, lr_frame.y);
  expect_near(polyline(loss, "train_loss"),
              expected_pixels(run.train_loss.points, loss_frame, 0, 100, 2, 5));
  expect_near(polyline(loss, "val_loss"),
              expected_pixels(run.val_loss.points, loss_frame, 0, 100, 2, 5));
  expect_near(polyline(lr, "lr"), expected_pixels(run.lr.points, lr_frame, 0, 100, 0, 8e-4));
  for (const char* label : {">0<", ">20<", ">100<", ">2.0<", ">3.5<", ">5.0<", ">loss<"})
    EXPECT_NE(loss.find(label), std::string::npos) << label;
  for (const char* label : {">0<", ">2e-4<", ">8e-4<", ">learning rate<", ">step<"})
    EXPECT_NE(lr.find(label), std::string::npos) << label;
  EXPECT_NE(svg.find(">sample: training curves<"), std::string::npos);
  EXPECT_NE(svg.find(">train loss<"), std::string::npos);
  EXPECT_NE(svg.find(">validation loss<"), std::string::npos);
}

TEST(CurvesSvg, IsWellFormedXmlWithTheRunNameEscaped) {
  TempDir dir;
  dir.write("a&b<c/log.jsonl", kResumedLog);
  const RunLog run = plot::read_run_log(dir.at("a&b<c"));
  const std::string file = dir.write("curves.svg", plot::curves_svg(run));
  int status = 0;
  const std::string out = output_of(
      "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1])"
      ".getroot(); ns = '{http://www.w3.org/2000/svg}'; print(r.tag, r.get('width'), "
      "len(r.findall('.//' + ns + 'polyline')), [t.text for t in r.iter(ns + 'text')][0])\" '" +
          file + "' 2>&1",
      &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "{http://www.w3.org/2000/svg}svg 900 3 a&b<c: training curves\n");
}

TEST(CurvesSvg, LongRunsKeepTheirShapeInFewPoints) {
  RunLog run;
  for (int step = 1; step <= 100000; ++step)
    run.train_loss.points.push_back({double(step), step == 50000 ? 1.0 : 3.0 + 1.0 / step});
  const std::string loss = group(plot::curves_svg(run), "loss");
  const auto points = polyline(loss, "train_loss");
  const Frame f = frame_of(loss);
  EXPECT_LE(points.size(), 4 * f.width);
  // The lone dip at step 50000 survives the thinning: the lowest pixel is the axis's 1.0.
  double lowest = 0;
  for (const auto& p : points) lowest = std::max(lowest, p.second);
  const double loss_axis_lo = 0, loss_axis_hi = 5;  // [1, 4] padded by 3%, steps of 1
  EXPECT_NEAR(lowest,
              f.y + f.height - (1.0 - loss_axis_lo) / (loss_axis_hi - loss_axis_lo) * f.height,
              0.0051);
}

// Pillow's reading of `png`: "WIDTH HEIGHT" then, for each point, 1 when a pixel of `rgb`
// lies within 2 pixels of it, else 0; then the colour of the top-left pixel.
std::string pillow_reading(const std::string& png, const Points& points, const std::string& rgb) {
  std::string list;
  for (const auto& [x, y] : points)
    list += "(" + std::to_string(x) + "," + std::to_string(y) + "),";
  const std::string script =
      "import sys\nfrom PIL import Image\nim = Image.open(sys.argv[1]).convert('RGB')\n"
      "print(im.width, im.height)\nc = " +
      rgb +
      "\n"
      "for x, y in [" +
      list +
      "]:\n"
      "  x, y = round(x), round(y)\n"
      "  print(int(any(im.getpixel((i, j)) == c for i in range(x - 2, x + 3) "
      "for j in range(y - 2, y + 3))))\n"
      "print(im.getpixel((0, 0)))\n";
  TempDir dir;
  return output_of("/usr/bin/python3 " + dir.write("read.py", script) + " '" + png + "' 2>&1");
}

bool have_pillow() {
  return std::system("/usr/bin/python3 -c 'from PIL import Image' 2>/dev/null") == 0;
}

TEST(CurvesPng, DecodesToItsSizeWithTheTrainCurveWhereItPasses) {
  if (!have_pillow()) GTEST_SKIP() << "Debian's python3-pil is not installed";
  const RunLog run = sample_run();
  TempDir dir;
  for (const auto& [width, height] : {std::pair{900, 600}, std::pair{640, 480}}) {
    const std::string png = dir.at("curves_" + std::to_string(width) + ".png");
    plot::write_curves_png(run, png, width, height);
    // The SVG of the same size is the same figure: its frame places the points.
    const Frame f = frame_of(group(plot::curves_svg(run, width, height), "loss"));
    const Points ends = {run.train_loss.points.front(), run.train_loss.points.back()};
    const std::string reading =
        pillow_reading(png, expected_pixels(ends, f, 0, 100, 2, 5), "(31, 119, 180)");
    EXPECT_EQ(reading,
              std::to_string(width) + " " + std::to_string(height) + "\n1\n1\n(255, 255, 255)\n");
  }
}

TEST(CurvesPng, IsDeterministicAndWrittenAsEncoded) {
  const RunLog run = sample_run();
  const std::string png = plot::curves_png(run);
  EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_EQ(plot::curves_png(run), png);
  TempDir dir;
  plot::write_curves_png(run, dir.at("curves.png"));
  EXPECT_EQ(read(dir.at("curves.png")), png);
  EXPECT_NE(plot::curves_png(run, 640, 480), png);
  EXPECT_NE(message_of<Error>([&] { plot::curves_png(run, 100, 100); }).find("at least 200 x 150"),
            std::string::npos);
}

TEST(CurvesPng, AnEmptyLogStillDraws) {
  RunLog run;
  EXPECT_EQ(plot::curves_png(run).substr(1, 3), "PNG");
  EXPECT_NE(plot::curves_svg(run).find(">no loss logged yet<"), std::string::npos);
}

TEST(BlockcPlot, WritesTheSvgAndPngBesideTheLogAndPrintsTheirPaths) {
  TempDir dir;
  dir.write("run/log.jsonl", kResumedLog);
  const std::string run = dir.at("run");
  auto r = blockc("plot " + run);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, run + "/curves.svg\n" + run + "/curves.png\n");
  EXPECT_NE(r.err.find("warning: " + run + "/log.jsonl:12: skipped the last line"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(read(run + "/curves.svg"), plot::curves_svg(plot::read_run_log(run)));
  EXPECT_EQ(read(run + "/curves.png"), plot::curves_png(plot::read_run_log(run)));

  r = blockc("plot " + run + " -o " + dir.at("elsewhere"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, dir.at("elsewhere.svg") + "\n" + dir.at("elsewhere.png") + "\n");
  EXPECT_TRUE(std::filesystem::is_regular_file(dir.at("elsewhere.png")));
}

TEST(BlockcPlot, AMissingLogOrAMalformedLineIsAnErrorNamingIt) {
  TempDir dir;
  std::filesystem::create_directories(dir.at("empty"));
  auto r = blockc("plot " + dir.at("empty"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: " + dir.at("empty") + "/log.jsonl: no such file"), std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.at("empty/curves.svg")));

  dir.write("bad/log.jsonl",
            "{\"step\": 1, \"loss\": 2}\n{\"step\": 2}\n{\"step\": 3, \"loss\": ]}\n");
  r = blockc("plot " + dir.at("bad"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: " + dir.at("bad") + "/log.jsonl:3: not a JSON object"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_FALSE(std::filesystem::exists(dir.at("bad/curves.png")));
}

}  // namespace
}  // namespace blocks::testing
