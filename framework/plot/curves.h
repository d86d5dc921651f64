// A training run's curves: its log.jsonl read into series, drawn as an SVG and as a PNG of the
// same picture (loss above, learning rate below, sharing the step axis). Torch-free.
//
//   auto run = blocks::plot::read_run_log("runs/tiny");      // runs/tiny/log.jsonl
//   for (const auto& w : run.warnings) spdlog::warn("{}", w);
//   blocks::io::write_file("runs/tiny/curves.svg", blocks::plot::curves_svg(run));
//   blocks::plot::write_curves_png(run, "runs/tiny/curves.png");
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "framework/config/error.h"

namespace blocks::plot {

// A log that cannot be read or holds a line that is not what the trainer writes; the message
// names the file and line ("runs/tiny/log.jsonl:7: ...").
class LogError : public Error {
 public:
  using Error::Error;
};

// One curve: (step, value) points in increasing step order, one point per step.
struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
};

struct RunLog {
  std::string name;  // the run's folder name, the picture's title
  std::string path;  // the log file read, for messages
  Series train_loss{"train loss", {}};
  Series val_loss{"validation loss", {}};
  Series lr{"learning rate", {}};
  // What was skipped without failing (a line cut by a killed writer, non-finite losses), for
  // the caller to show.
  std::vector<std::string> warnings;
};

// Reads `path`: a run folder (its log.jsonl) or the log file itself. Train points come from
// lines with "loss" (and "lr"), validation points from lines with "val_loss"; other lines are
// events and are skipped. A step logged twice keeps its last line, and a {"event": "resume",
// "step": S} line drops the points past S logged before it (the steps of the abandoned run
// that the resumed one has not yet redone). A loss of null (a NaN written by a JSON library) is
// skipped with a warning; so is a last line without its newline that does not parse (a writer
// killed mid-line). Throws LogError for anything else that is not a JSON object of numbers.
RunLog read_run_log(const std::string& path);

// The picture as SVG text, width x height pixels.
std::string curves_svg(const RunLog& run, int width = 900, int height = 600);

// The same picture rasterized and PNG-encoded (8-bit RGB); deterministic for equal inputs.
std::string curves_png(const RunLog& run, int width = 900, int height = 600);

// curves_png written to `path` atomically (io::write_file).
void write_curves_png(const RunLog& run, const std::string& path, int width = 900,
                      int height = 600);

}  // namespace blocks::plot
