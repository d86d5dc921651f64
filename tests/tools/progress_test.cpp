// The progress bar's line (tools/blockc/progress.h): fraction, done/total in the total's unit,
// rate and remaining time once there is a rate to speak of.
#include "tools/blockc/progress.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace blockc {
namespace {

TEST(Progress, LineShowsFractionBytesRateAndEta) {
  EXPECT_EQ(progress_line("loading", 0, 2'800'000'000, 0.0),
            "loading  [                        ]   0%  0.0/2.8 GB");
  EXPECT_EQ(progress_line("loading", 1'400'000'000, 2'800'000'000, 2.0),
            "loading  [############            ]  50%  1.4/2.8 GB  700 MB/s  ETA 2 s");
  EXPECT_EQ(progress_line("initializing", 300'000'000, 300'000'000, 0.5),
            "initializing  [########################] 100%  300/300 MB  600 MB/s");
  EXPECT_EQ(progress_line("loading", 5'000'000'000, 20'000'000'000, 2.0),
            "loading  [######                  ]  25%  5.0/20.0 GB  2.5 GB/s  ETA 6 s");
}

TEST(Progress, OnlyWhenStderrIsATerminal) {
  // ctest gives tests a pipe; by hand in a terminal the bar is there.
  EXPECT_EQ(static_cast<bool>(progress_bar("loading")), isatty(STDERR_FILENO) == 1);
}

}  // namespace
}  // namespace blockc
