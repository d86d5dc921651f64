// Test support: a temporary folder that a Python script (Debian's python3-torch) fills once per
// test suite: a Hugging Face folder in transformers' layout, inputs, and a reference's outputs.
// The script sees SOURCE (the source tree) and DIR (the folder), and `torch` imported.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {

class ReferenceFolder {
 public:
  explicit ReferenceFolder(const std::string& script) {
    std::ofstream(dir_.at("writer.py")) << "import torch\nSOURCE = '" BLOCKS_SOURCE_DIR
                                        << "'\nDIR = '" << dir_.path().string() << "'\n"
                                        << script;
    const std::string command = std::string(reference_python()) + " " + dir_.at("writer.py") +
                                " 2>" + dir_.at("writer.err");
    written_ = std::system(command.c_str()) == 0;
  }
  std::string at(const std::string& name) const { return dir_.at(name); }
  // In a fixture's SetUp: skips without python3-torch, fails with the script's stderr when it
  // failed.
  static void require(const std::unique_ptr<ReferenceFolder>& folder) {
    if (!have_reference_python()) GTEST_SKIP() << "python3 with torch is not installed";
    ASSERT_TRUE(folder);
    std::ifstream err(folder->at("writer.err"));
    ASSERT_TRUE(folder->written_) << std::string(std::istreambuf_iterator<char>(err), {});
  }

 private:
  TempDir dir_;
  bool written_ = false;
};

// A fixture whose test suite shares one ReferenceFolder, written by `Fixture::script()`:
//   class LlavaFolder : public SharedReferenceFolder<LlavaFolder> {
//    public:
//     static const char* script() { return kWriter; }
//   };
template <typename Fixture>
class SharedReferenceFolder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (have_reference_python()) folder_ = std::make_unique<ReferenceFolder>(Fixture::script());
  }
  static void TearDownTestSuite() { folder_.reset(); }
  void SetUp() override { ReferenceFolder::require(folder_); }
  static std::string at(const std::string& name) { return folder_->at(name); }

 private:
  static inline std::unique_ptr<ReferenceFolder> folder_;
};

}  // namespace blocks::testing
