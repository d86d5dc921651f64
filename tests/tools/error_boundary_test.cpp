// blockc's error boundary (tools/blockc/error_boundary.h): what a command throws becomes one
// message and an exit code, by cause.
#include "tools/blockc/error_boundary.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <sstream>

#include "framework/nn/builder.h"

namespace {

struct Outcome {
  int code;
  std::string log;
};

// Runs `command` under the boundary with the log going to a string.
Outcome run(const std::function<int()>& command) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  sink->set_pattern("%l: %v");
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  const int code = blockc::guarded(command);
  spdlog::set_default_logger(previous);
  return {code, log.str()};
}

TEST(ErrorBoundary, PassesTheCommandsOwnCode) {
  EXPECT_EQ(run([] { return 0; }).code, 0);
  EXPECT_EQ(run([] { return 2; }).code, 2);
  EXPECT_EQ(run([] { return 0; }).log, "");
}

TEST(ErrorBoundary, UserCausesExitOne) {
  const Outcome build = run([]() -> int { throw blocks::nn::BuildError("model.head: broken"); });
  EXPECT_EQ(build.code, 1);
  EXPECT_EQ(build.log, "error: model.head: broken\n");
  const Outcome input =
      run([]() -> int { throw blocks::nn::InputError("model", "tokens must be int64"); });
  EXPECT_EQ(input.code, 1);
  EXPECT_EQ(input.log, "error: model: tokens must be int64\n");
}

TEST(ErrorBoundary, RegistrationBugsExitSeventy) {
  const Outcome r = run([]() -> int { throw blocks::RegistrationError("mixer `x` registered twice"); });
  EXPECT_EQ(r.code, 70);
  EXPECT_EQ(r.log, "error: mixer `x` registered twice\n");
}

TEST(ErrorBoundary, MemoryAndFilesystemFailuresAreMessages) {
  const Outcome memory = run([]() -> int { throw std::bad_alloc(); });
  EXPECT_EQ(memory.code, 1);
  EXPECT_EQ(memory.log,
            "error: out of memory: the model or its inputs need more memory than this machine "
            "could give\n");
  const Outcome file = run([]() -> int {
    return static_cast<int>(std::filesystem::file_size("/nonexistent/blocks/file"));
  });
  EXPECT_EQ(file.code, 1);
  EXPECT_NE(file.log.find("error: filesystem error: "), std::string::npos) << file.log;
  EXPECT_NE(file.log.find("/nonexistent/blocks/file"), std::string::npos) << file.log;
  const Outcome other = run([]() -> int { throw std::runtime_error("odd"); });
  EXPECT_EQ(other.code, 1);
  EXPECT_EQ(other.log, "error: odd\n");
}

}  // namespace
