// `blockc prepare --bytes`: text to train.bin and val.bin, one token per byte, split as
// nanoGPT's shakespeare_char/prepare.py splits (data[:int(n*0.9)], data[int(n*0.9):]).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "framework/data/tokens.h"
#include "tests/support/blockc_run.h"
#include "tests/support/temp_dir.h"

namespace {

using blocks::data::TokenFile;
using blocks::data::TokenFormat;
using blocks::testing::blockc;
using blocks::testing::TempDir;

std::vector<uint32_t> ids_of(const TokenFile& file) {
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < file.size(); ++i) ids.push_back(file.at(i));
  return ids;
}

std::vector<uint32_t> ids_of(const std::string& text) {
  std::vector<uint32_t> ids;
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

// 1000 bytes over two files, some above 127 (é is 0xC3 0xA9 in UTF-8).
const std::string kFirst = std::string(600, 'a') + "caf\xC3\xA9";
const std::string kSecond = std::string(394, 'z') + "\n";

TEST(BlockcPrepare, SplitsTheConcatenatedBytesNinetyTen) {
  TempDir dir;
  const auto a = dir.write("a.txt", kFirst), b = dir.write("b.txt", kSecond);
  const std::string out = dir.at("data/char");  // folders are created
  auto r = blockc("prepare --bytes " + a + " " + b + " -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, out + "/train.bin: 900 tokens (nanogpt, 2-byte ids)\n" + out +
                       "/val.bin: 100 tokens (nanogpt, 2-byte ids)\n"
                       "1000 bytes of text; vocabulary 256 (one id per byte)\n");
  const std::string text = kFirst + kSecond;
  const TokenFile train(out + "/train.bin"), val(out + "/val.bin");
  EXPECT_EQ(train.format(), TokenFormat::nanogpt);
  EXPECT_EQ(ids_of(train), ids_of(text.substr(0, 900)));
  EXPECT_EQ(ids_of(val), ids_of(text.substr(900)));
  EXPECT_EQ(std::filesystem::file_size(out + "/train.bin"), 1800u);  // headerless uint16
}

TEST(BlockcPrepare, LlmcFormatAndAnotherFraction) {
  TempDir dir;
  const auto a = dir.write("a.txt", kFirst);  // 605 bytes: int(605 * 0.75) = 453
  auto r = blockc("prepare --bytes " + a + " -o " + dir.at("out") +
                  " --validation-fraction 0.25 --format llmc");
  ASSERT_EQ(r.code, 0) << r.err;
  const TokenFile train(dir.at("out/train.bin")), val(dir.at("out/val.bin"));
  EXPECT_EQ(train.format(), TokenFormat::llmc);
  EXPECT_EQ(train.token_bytes(), 2);
  EXPECT_EQ(ids_of(train), ids_of(kFirst.substr(0, 453)));
  EXPECT_EQ(ids_of(val), ids_of(kFirst.substr(453)));
  EXPECT_EQ(std::filesystem::file_size(dir.at("out/val.bin")), 1024u + 2 * 152);
}

TEST(BlockcPrepare, MissingInputIsReportedBeforeAnythingIsWritten) {
  TempDir dir;
  const auto a = dir.write("a.txt", kFirst);
  const std::string missing = dir.at("missing.txt");
  auto r = blockc("prepare --bytes " + a + " " + missing + " -o " + dir.at("out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "blockc: error: cannot open " + missing + ": No such file or directory\n");
  EXPECT_FALSE(std::filesystem::exists(dir.at("out")));
}

TEST(BlockcPrepare, SplitsThatWouldBeEmptyAreRefused) {
  TempDir dir;
  const auto tiny = dir.write("tiny.txt", "x");
  auto r = blockc("prepare --bytes " + tiny + " -o " + dir.at("out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "blockc: error: the train split of 1 byte of text at a validation fraction of 0.1 "
            "holds no tokens; give more text or another fraction\n");
  EXPECT_FALSE(std::filesystem::exists(dir.at("out")));
}

TEST(BlockcPrepare, UsageErrorsExitTwo) {
  TempDir dir;
  const auto a = dir.write("a.txt", kFirst);
  EXPECT_EQ(blockc("prepare -o " + dir.at("out")).code, 2);  // no --bytes
  EXPECT_EQ(blockc("prepare --bytes " + a).code, 2);         // no -o
  EXPECT_EQ(blockc("prepare --bytes " + a + " -o " + dir.at("out") + " --format gpt2").code, 2);
  const auto r =
      blockc("prepare --bytes " + a + " -o " + dir.at("out") + " --validation-fraction 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("must be a number above 0 and below 1, found 1"), std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.at("out")));
}

}  // namespace
