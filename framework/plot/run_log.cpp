// read_run_log: a trainer's log.jsonl (one JSON object a line) into the loss and learning-rate
// series that curves.h draws.
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "framework/plot/curves.h"

namespace blocks::plot {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Steps map to values so that a step logged again (after a resume) replaces its earlier line.
struct Collected {
  std::map<double, double> train, val, lr;
  int null_values = 0, first_null_line = 0;
};

[[noreturn]] void fail(const std::string& message) { throw LogError(message); }

// The log file of `path` (a run folder or the file itself), with a message a user can act on
// when there is none.
std::string log_file(const std::string& path) {
  std::error_code error;
  const auto status = fs::status(path, error);
  if (!fs::exists(status))
    fail(path +
         ": no such run folder or log file (a run folder holds the log.jsonl that "
         "training writes)");
  if (!fs::is_directory(status)) return path;
  std::string file = (fs::path(path) / "log.jsonl").string();
  if (!fs::exists(fs::status(file, error)))
    fail(file + ": no such file; " + path +
         " is not a training run's folder, or its run has not logged a step yet");
  return file;
}

// The run's folder name, for the title: "runs/tiny/" and "runs/tiny/log.jsonl" are "tiny".
std::string run_name(const std::string& path, const std::string& file) {
  fs::path folder = fs::absolute(file == path ? fs::path(file).parent_path() : fs::path(path));
  folder = folder.lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();
  return folder.filename().string();
}

std::string read_text(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail(file + ": not a regular file; a run's log is one");
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot open " + file + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("cannot read " + file + ": " + std::strerror(errno));
  return text.str();
}

// nlohmann says "[json.exception.parse_error.101] parse error at line 1, column 22: ..."; the
// line is always 1 (one line is parsed) and the message names the file's line already.
std::string parse_reason(const Json::parse_error& error) {
  const std::string what = error.what();
  const auto column = what.find("column ");
  if (column != std::string::npos) return what.substr(column);
  const auto end = what.find("] ");
  return end == std::string::npos ? what : what.substr(end + 2);
}

// A value as a message shows it: the JSON text, cut to a line.
std::string shown(const Json& value) {
  if (value.is_null()) return "null";
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return "the " + std::string(value.type_name()) + " " + text;
}

// The number under `key`; nullopt when the key is absent or null (`null_seen` says which).
std::optional<double> number(const Json& line, const char* key, const std::string& where,
                             bool* null_seen = nullptr) {
  const auto it = line.find(key);
  if (it == line.end()) return std::nullopt;
  if (it->is_null() && null_seen) {
    *null_seen = true;
    return std::nullopt;
  }
  if (!it->is_number()) fail(where + ": \"" + key + "\" is " + shown(*it) + "; expected a number");
  return it->get<double>();
}

double step_of(const Json& line, const std::string& where, const char* of) {
  if (!line.contains("step")) fail(where + ": a line with \"" + of + "\" needs a \"step\"");
  return *number(line, "step", where);
}

// A resumed run redoes the steps after its checkpoint; what the abandoned run logged past it
// would otherwise stay on the curve until the new run reaches those steps again.
void apply_resume(const Json& line, const std::string& where, Collected& c) {
  const auto step = number(line, "step", where);
  if (!step) return;
  for (auto* series : {&c.train, &c.val, &c.lr})
    series->erase(series->upper_bound(*step), series->end());
}

void apply_line(const Json& line, const std::string& where, int line_number, Collected& c) {
  if (!line.is_object())
    fail(where + ": expected a JSON object, found " + std::string(line.type_name()));
  if (line.value("event", Json()) == "resume") return apply_resume(line, where, c);
  bool null_seen = false;
  if (line.contains("loss")) {
    const double step = step_of(line, where, "loss");
    if (const auto loss = number(line, "loss", where, &null_seen)) c.train[step] = *loss;
    if (const auto lr = number(line, "lr", where, &null_seen)) c.lr[step] = *lr;
  }
  if (line.contains("val_loss")) {
    const double step = step_of(line, where, "val_loss");
    if (const auto loss = number(line, "val_loss", where, &null_seen)) c.val[step] = *loss;
  }
  if (null_seen && c.null_values++ == 0) c.first_null_line = line_number;
}

// Parses one line; false for a last line cut short by a killed writer, which is skipped.
bool parse_line(const std::string& text, const std::string& where, bool cut_short, Json& line) {
  try {
    line = Json::parse(text);
    return true;
  } catch (const Json::parse_error& error) {
    if (cut_short) return false;
    fail(where + ": not a JSON object (" + parse_reason(error) + ")");
  }
}

std::vector<std::pair<double, double>> points(const std::map<double, double>& values) {
  return {values.begin(), values.end()};
}

}  // namespace

RunLog read_run_log(const std::string& path) {
  RunLog run;
  run.path = log_file(path);
  run.name = run_name(path, run.path);
  const std::string text = read_text(run.path);
  Collected collected;
  size_t begin = 0;
  for (int number = 1; begin < text.size(); ++number) {
    size_t end = text.find('\n', begin);
    const bool cut_short = end == std::string::npos;  // no newline: the writer may have died
    if (cut_short) end = text.size();
    std::string content = text.substr(begin, end - begin);
    begin = end + 1;
    if (!content.empty() && content.back() == '\r') content.pop_back();
    if (content.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = run.path + ":" + std::to_string(number);
    Json line;
    if (!parse_line(content, where, cut_short, line)) {
      run.warnings.push_back(where +
                             ": skipped the last line, cut short (the writer was "
                             "probably killed mid-line)");
      continue;
    }
    apply_line(line, where, number, collected);
  }
  if (collected.null_values > 0)
    run.warnings.push_back(run.path + ":" + std::to_string(collected.first_null_line) + ": " +
                           std::to_string(collected.null_values) +
                           " line(s) have a null value (a NaN or infinity); those points are "
                           "not drawn");
  run.train_loss.points = points(collected.train);
  run.val_loss.points = points(collected.val);
  run.lr.points = points(collected.lr);
  return run;
}

}  // namespace blocks::plot
