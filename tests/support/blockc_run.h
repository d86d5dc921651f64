// Test support: runs blockc (the BLOCKC definition) with arguments and captures its exit code,
// stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace blocks::testing {

struct BlockcResult {
  int code = -1;
  std::string out, err;
};

inline BlockcResult blockc(const std::string& args) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("blockc_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string out = (dir / "out").string(), err = (dir / "err").string();
  const std::string cmd = std::string(BLOCKC) + " " + args + " >" + out + " 2>" + err;
  BlockcResult r;
  const int status = std::system(cmd.c_str());
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace blocks::testing
