// Token files against their writers: nanoGPT's (`np.array(ids, dtype=np.uint16).tofile`) and
// llm.c's (dev/data/data_common.py write_datafile, copied below) run by Debian's python3-numpy;
// the batches a trainer draws from them; every error message.
#include "framework/data/tokens.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "framework/data/batches.h"
#include "tests/support/temp_dir.h"

namespace {

using namespace blocks::data;
using blocks::testing::TempDir;

constexpr const char* kPython = "/usr/bin/python3";

bool python_has_numpy() {
  static const bool has =
      std::system((std::string(kPython) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0;
  // CI sets BLOCKS_REQUIRE_REFERENCES: a missing reference is a failure there, not a skip.
  if (!has && std::getenv("BLOCKS_REQUIRE_REFERENCES"))
    ADD_FAILURE() << kPython << " cannot import numpy, and BLOCKS_REQUIRE_REFERENCES is set";
  return has;
}

// The reference writers. write_datafile is llm.c's (dev/data/data_common.py) minus its print.
constexpr const char* kWriters = R"(
import sys
import numpy as np

HEADERS_INFO = {
    "gpt-2": {"magic": 20240520, "version": 1, "token_dtype": np.uint16},
    "llama-3": {"magic": 20240801, "version": 7, "token_dtype": np.uint32},
}

def write_datafile(filename, toks, model_desc="gpt-2"):
    assert len(toks) < 2**31, "token count too large" # ~2.1B tokens
    assert model_desc in ["gpt-2", "llama-3"], f"unknown model descriptor {model_desc}"
    info = HEADERS_INFO[model_desc]
    header = np.zeros(256, dtype=np.int32)
    header[0] = info["magic"]
    header[1] = info["version"]
    header[2] = len(toks)
    toks_np = np.array(toks, dtype=info["token_dtype"])
    with open(filename, "wb") as f:
        f.write(header.tobytes())
        f.write(toks_np.tobytes())

folder = sys.argv[1]
gpt2 = [(i * 7919 + 13) % 50257 for i in range(5000)]
llama3 = [(i * 104729 + 7) % 128256 for i in range(3000)]
# nanoGPT's data/openwebtext/prepare.py and shakespeare_char/prepare.py
np.array(gpt2, dtype=np.uint16).tofile(folder + "/nanogpt.bin")
write_datafile(folder + "/gpt2.bin", gpt2, "gpt-2")
write_datafile(folder + "/llama3.bin", llama3, "llama-3")
)";

std::vector<uint32_t> gpt2_ids() {
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 5000; ++i) ids.push_back((i * 7919 + 13) % 50257);
  return ids;
}

std::vector<uint32_t> llama3_ids() {
  std::vector<uint32_t> ids;
  for (uint64_t i = 0; i < 3000; ++i)
    ids.push_back(static_cast<uint32_t>((i * 104729 + 7) % 128256));
  return ids;
}

std::vector<uint32_t> all_ids(const TokenFile& file) {
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < file.size(); ++i) ids.push_back(file.at(i));
  return ids;
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string write_bytes(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.at(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string le32(int32_t value) { return std::string(reinterpret_cast<const char*>(&value), 4); }

// An llm.c header: magic, version, count, then zeros to 1024 bytes.
std::string llmc_header(int32_t magic, int32_t version, int32_t count) {
  return le32(magic) + le32(version) + le32(count) + std::string(1024 - 12, '\0');
}

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const blocks::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---------------------------------------------------------------------------------------------
// Files written by the references.

class ReferenceFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!python_has_numpy()) return;
    dir_ = new TempDir("tokens_test");
    std::ofstream(dir_->at("writers.py")) << kWriters;
    written_ = std::system((std::string(kPython) + " " + dir_->at("writers.py") + " " +
                            dir_->path().string() + " 2>" + dir_->at("writers.err"))
                               .c_str()) == 0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!python_has_numpy()) GTEST_SKIP() << kPython << " with numpy is not installed";
    ASSERT_TRUE(written_) << bytes_of(dir_->at("writers.err"));
  }
  static std::string at(const std::string& name) { return dir_->at(name); }
  static TempDir* dir_;
  static bool written_;
};
TempDir* ReferenceFiles::dir_ = nullptr;
bool ReferenceFiles::written_ = false;

TEST_F(ReferenceFiles, NanogptFileReadsBackIdForId) {
  const TokenFile file(at("nanogpt.bin"));
  EXPECT_EQ(file.format(), TokenFormat::nanogpt);
  EXPECT_EQ(file.token_bytes(), 2);
  EXPECT_EQ(file.size(), 5000u);
  EXPECT_EQ(file.path(), at("nanogpt.bin"));
  EXPECT_EQ(all_ids(file), gpt2_ids());
  EXPECT_EQ(all_ids(TokenFile(at("nanogpt.bin"), TokenFormat::nanogpt)), gpt2_ids());
}

TEST_F(ReferenceFiles, LlmcGpt2FileReadsBackIdForId) {
  for (auto format : {TokenFormat::automatic, TokenFormat::llmc}) {
    const TokenFile file(at("gpt2.bin"), format);
    EXPECT_EQ(file.format(), TokenFormat::llmc);
    EXPECT_EQ(file.token_bytes(), 2);
    EXPECT_EQ(file.size(), 5000u);
    EXPECT_EQ(all_ids(file), gpt2_ids());
  }
}

TEST_F(ReferenceFiles, LlmcLlama3FileHasWideIds) {
  const TokenFile file(at("llama3.bin"));
  EXPECT_EQ(file.format(), TokenFormat::llmc);
  EXPECT_EQ(file.token_bytes(), 4);
  EXPECT_EQ(file.size(), 3000u);
  const auto expected = llama3_ids();
  EXPECT_EQ(all_ids(file), expected);
  EXPECT_GT(*std::max_element(expected.begin(), expected.end()), 65535u);
}

TEST_F(ReferenceFiles, ReadWidensARangeToInt64) {
  const TokenFile file(at("gpt2.bin"));
  std::vector<int64_t> ids(100);
  file.read(4900, 100, ids.data());
  const auto expected = gpt2_ids();
  for (size_t i = 0; i < 100; ++i) EXPECT_EQ(ids[i], expected[4900 + i]) << i;
}

TEST_F(ReferenceFiles, WrittenFilesAreByteForByteTheReferences) {
  TempDir out;
  write_tokens(out.at("nanogpt.bin"), gpt2_ids(), TokenFormat::nanogpt, 2);
  write_tokens(out.at("gpt2.bin"), gpt2_ids(), TokenFormat::llmc, 2);
  write_tokens(out.at("llama3.bin"), llama3_ids(), TokenFormat::llmc, 4);
  for (const char* name : {"nanogpt.bin", "gpt2.bin", "llama3.bin"})
    EXPECT_TRUE(bytes_of(out.at(name)) == bytes_of(at(name))) << name;
}

// ---------------------------------------------------------------------------------------------
// Formats and writing.

TEST(TokenFormats, NamesRoundTripAndUnknownOnesListTheValid) {
  for (auto format : {TokenFormat::automatic, TokenFormat::nanogpt, TokenFormat::llmc})
    EXPECT_EQ(parse_token_format(token_format_name(format)), format);
  EXPECT_EQ(token_format_name(TokenFormat::automatic), "auto");
  EXPECT_EQ(message_of([] { parse_token_format("gpt2"); }),
            "unknown token format 'gpt2' (valid: auto, nanogpt, llmc)");
  EXPECT_THROW(parse_token_format("gpt2"), DataError);
}

TEST(TokenFiles, FourByteHeaderlessFilesNeedTheirWidth) {
  TempDir dir;
  write_tokens(dir.at("wide.bin"), {70000, 1, 2}, TokenFormat::nanogpt, 4);
  const TokenFile file(dir.at("wide.bin"), TokenFormat::nanogpt, 4);
  EXPECT_EQ(file.token_bytes(), 4);
  EXPECT_EQ(all_ids(file), (std::vector<uint32_t>{70000, 1, 2}));
  // Read as nanoGPT's uint16, the same 12 bytes are 6 tokens.
  EXPECT_EQ(TokenFile(dir.at("wide.bin")).size(), 6u);
  EXPECT_EQ(message_of([&] { TokenFile(dir.at("wide.bin"), TokenFormat::nanogpt, 3); }),
            dir.at("wide.bin") + ": headerless tokens are 2 or 4 bytes wide, found 3");
}

TEST(TokenFiles, MovedFilesKeepTheirMapping) {
  TempDir dir;
  write_tokens(dir.at("a.bin"), {5, 6, 7}, TokenFormat::nanogpt, 2);
  TokenFile a(dir.at("a.bin"));
  TokenFile b(std::move(a));
  EXPECT_EQ(all_ids(b), (std::vector<uint32_t>{5, 6, 7}));
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
  write_tokens(dir.at("c.bin"), {9}, TokenFormat::llmc, 2);
  b = TokenFile(dir.at("c.bin"));
  EXPECT_EQ(all_ids(b), (std::vector<uint32_t>{9}));
  EXPECT_EQ(b.format(), TokenFormat::llmc);
}

TEST(TokenFiles, ReadsPastTheEndAreRefused) {
  TempDir dir;
  write_tokens(dir.at("a.bin"), {5, 6, 7}, TokenFormat::nanogpt, 2);
  const TokenFile file(dir.at("a.bin"));
  int64_t out[4];
  EXPECT_EQ(message_of([&] { file.read(1, 3, out); }),
            dir.at("a.bin") + ": tokens [1, 4) are past the end of its 3 tokens");
  EXPECT_EQ(message_of([&] { file.at(3); }),
            dir.at("a.bin") + ": tokens [3, 4) are past the end of its 3 tokens");
  file.read(3, 0, out);  // an empty range at the end is fine
}

TEST(TokenWriting, RefusesWhatDoesNotFitAndLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.at("t.bin");
  EXPECT_EQ(message_of([&] {
              write_tokens(path, {1, 70000, 2}, TokenFormat::nanogpt, 2);
            }),
            path + ": token 70000 at position 1 does not fit 2-byte tokens (at most 65535)");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(message_of([&] { write_tokens(path, {1}, TokenFormat::automatic, 2); }),
            path + ": writing tokens needs a format: nanogpt or llmc");
  EXPECT_EQ(message_of([&] { write_tokens(path, {1}, TokenFormat::llmc, 3); }),
            path + ": tokens are 2 or 4 bytes wide, found 3");
  EXPECT_EQ(message_of([&] { TokenWriter(path, TokenFormat::llmc, 2, uint64_t{1} << 31); }),
            path +
                ": llm.c's header counts tokens in an int32; 2147483648 tokens do not fit (at "
                "most 2147483647)");
  // No file and no temporary is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 0);
}

TEST(TokenWriting, TheDeclaredCountIsWrittenExactly) {
  TempDir dir;
  const std::string path = dir.at("t.bin");
  const uint32_t ids[] = {1, 2, 3};
  {
    TokenWriter writer(path, TokenFormat::llmc, 2, 3);
    writer.write(ids, 2);
    EXPECT_EQ(message_of([&] { writer.write(ids, 2); }),
              path + ": more than the 3 declared tokens were written");
    EXPECT_EQ(message_of([&] { writer.commit(); }),
              path + ": 2 of the 3 declared tokens were written");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  TokenWriter writer(path, TokenFormat::llmc, 2, 3);
  writer.write(ids, 1);
  writer.write(ids + 1, 2);
  writer.commit();
  EXPECT_EQ(all_ids(TokenFile(path)), (std::vector<uint32_t>{1, 2, 3}));
}

// ---------------------------------------------------------------------------------------------
// Files that cannot be read as tokens.

TEST(TokenFileErrors, SizeThatIsNotWholeTokens) {
  TempDir dir;
  const auto path = write_bytes(dir, "odd.bin", std::string(1001, 'x'));
  EXPECT_EQ(message_of([&] { TokenFile{path}; }),
            path + ": 1001 bytes is not a whole number of 2-byte tokens");
  const auto wide = write_bytes(dir, "wide.bin", std::string(6, 'x'));
  EXPECT_EQ(message_of([&] { TokenFile(wide, TokenFormat::nanogpt, 4); }),
            wide + ": 6 bytes is not a whole number of 4-byte tokens");
  EXPECT_THROW(TokenFile{path}, DataError);
}

TEST(TokenFileErrors, EmptyAndMissingFiles) {
  TempDir dir;
  const auto empty = write_bytes(dir, "empty.bin", "");
  EXPECT_EQ(message_of([&] { TokenFile{empty}; }),
            empty + ": the file is empty; a token file holds at least 1 token");
  const auto missing = dir.at("missing.bin");
  EXPECT_EQ(message_of([&] { TokenFile{missing}; }),
            "cannot open " + missing + ": No such file or directory");
  EXPECT_THROW(TokenFile{missing}, blocks::io::FileError);
  EXPECT_EQ(message_of([&] { TokenFile{dir.path().string()}; }),
            dir.path().string() + ": is a folder; inputs are regular files");
}

TEST(TokenFileErrors, LlmcHeaderWithABadVersion) {
  TempDir dir;
  const auto path = write_bytes(dir, "v2.bin", llmc_header(20240520, 2, 1) + "ab");
  EXPECT_EQ(message_of([&] { TokenFile(path, TokenFormat::llmc); }),
            path +
                ": llm.c header version 2 with magic 20240520; llm.c writes version 1 for "
                "that magic");
  // Detected from the magic: the message says how the file was read, and how else it could be.
  EXPECT_EQ(message_of([&] { TokenFile{path}; }),
            path +
                ": llm.c header version 2 with magic 20240520; llm.c writes version 1 for "
                "that magic (read as llm.c because the file starts with llm.c's magic "
                "number; give the format nanogpt for a headerless file)");
  const auto llama = write_bytes(dir, "v1.bin", llmc_header(20240801, 1, 1) + "abcd");
  EXPECT_EQ(message_of([&] { TokenFile(llama, TokenFormat::llmc); }),
            llama +
                ": llm.c header version 1 with magic 20240801; llm.c writes version 7 for "
                "that magic");
  // The same 1026 bytes as an explicit nanoGPT file are 513 tokens.
  EXPECT_EQ(TokenFile(path, TokenFormat::nanogpt).size(), 513u);
}

TEST(TokenFileErrors, LlmcHeaderCountThatDisagreesWithTheSize) {
  TempDir dir;
  const auto path = write_bytes(dir, "short.bin", llmc_header(20240520, 1, 1000) + "abcd");
  EXPECT_EQ(message_of([&] { TokenFile(path, TokenFormat::llmc); }),
            path +
                ": the llm.c header counts 1000 2-byte tokens (3024 bytes with the header) "
                "but the file has 1028 bytes");
  const auto none = write_bytes(dir, "none.bin", llmc_header(20240520, 1, 0));
  EXPECT_EQ(message_of([&] { TokenFile(none, TokenFormat::llmc); }),
            none + ": the llm.c header counts 0 tokens");
}

TEST(TokenFileErrors, LlmcHeaderThatIsShortOrHasNoMagic) {
  TempDir dir;
  const auto cut = write_bytes(dir, "cut.bin", llmc_header(20240520, 1, 1).substr(0, 500));
  EXPECT_EQ(message_of([&] { TokenFile(cut, TokenFormat::llmc); }),
            cut + ": 500 bytes is shorter than llm.c's 1024-byte header");
  const auto plain = write_bytes(dir, "plain.bin", llmc_header(12345, 1, 1) + "ab");
  EXPECT_EQ(message_of([&] { TokenFile(plain, TokenFormat::llmc); }),
            plain +
                ": the llm.c magic number is 12345; expected 20240520 (GPT-2, uint16 tokens) "
                "or 20240801 (Llama 3, uint32 tokens)");
  EXPECT_EQ(TokenFile(plain).format(), TokenFormat::nanogpt);  // no magic: headerless
}

// A 200 MB file is mapped, not read: opening it and drawing a few windows leaves the peak RSS
// (which would grow by 200 MB for a read) nearly where it was.
TEST(TokenFiles, BigFileOpensWithoutBeingRead) {
  TempDir dir;
  const std::string path = dir.at("big.bin");
  const uint64_t bytes = 200ull << 20;
  ASSERT_EQ(std::system(("truncate -s " + std::to_string(bytes) + " " + path).c_str()), 0);
  auto peak_kb = [] {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
  };
  const long before = peak_kb();
  const TokenFile file(path);
  EXPECT_EQ(file.size(), bytes / 2);
  EXPECT_EQ(file.at(file.size() - 1), 0u);
  const Batches batches(file, 1024, Sampling::random, 1);
  std::vector<int64_t> inputs(8 * 1024), targets(8 * 1024);
  batches.fill(0, 8, 0, 8, 50257, inputs.data(), targets.data());
  EXPECT_LT(peak_kb() - before, 16 * 1024) << "KB of peak RSS";
}

// ---------------------------------------------------------------------------------------------
// Batches. The file's id at position p is p % 50000, so a row shows where its window starts.

class Windows : public ::testing::Test {
 protected:
  static constexpr size_t kTokens = 100003;
  static void SetUpTestSuite() {
    dir_ = new TempDir("windows_test");
    std::vector<uint32_t> ids(kTokens);
    for (size_t i = 0; i < kTokens; ++i) ids[i] = i % 50000;
    write_tokens(dir_->at("ids.bin"), ids, TokenFormat::nanogpt, 2);
    file_ = new TokenFile(dir_->at("ids.bin"));
  }
  static void TearDownTestSuite() {
    delete file_;
    delete dir_;
  }

  struct Batch {
    std::vector<int64_t> inputs, targets;
    bool operator==(const Batch&) const = default;
  };
  static Batch draw(const Batches& batches, uint64_t index, int64_t rows, int64_t begin,
                    int64_t count) {
    const int64_t length = batches.sequence_length();
    Batch batch{std::vector<int64_t>(count * length), std::vector<int64_t>(count * length)};
    batches.fill(index, rows, begin, count, 50257, batch.inputs.data(), batch.targets.data());
    return batch;
  }
  // Checks row `row` of `batch` is the window at `start`, targets shifted by one.
  static void expect_window(const Batch& batch, int64_t length, int64_t row, uint64_t start) {
    for (int64_t t = 0; t < length; ++t) {
      ASSERT_EQ(batch.inputs[row * length + t], static_cast<int64_t>((start + t) % 50000));
      ASSERT_EQ(batch.targets[row * length + t], static_cast<int64_t>((start + t + 1) % 50000));
    }
  }
  static TempDir* dir_;
  static TokenFile* file_;
};
TempDir* Windows::dir_ = nullptr;
TokenFile* Windows::file_ = nullptr;

TEST_F(Windows, SequentialWindowsWalkTheFileAndWrap) {
  const int64_t length = 64, rows = 6;
  const Batches batches(*file_, length, Sampling::sequential, 0);
  const uint64_t starts = kTokens - length;
  for (uint64_t index : {0ull, 1ull, 7ull, 260ull, 261ull, 1000000ull}) {
    const Batch batch = draw(batches, index, rows, 0, rows);
    for (int64_t r = 0; r < rows; ++r) {
      const uint64_t start = ((index * rows + r) * length) % starts;
      EXPECT_EQ(batches.window_start(index, rows, r), start);
      expect_window(batch, length, r, start);
    }
  }
  // Micro-batch 0 starts at 0, L, 2L...; the windows never overlap but in their last target.
  EXPECT_EQ(batches.window_start(0, rows, 5), 5u * length);
  EXPECT_EQ(batches.window_start(1, rows, 0), 6u * length);
  // The walk wraps: the global row 1562 starts at 1562 * 64 = 99968 > 99939 starts.
  EXPECT_EQ(batches.window_start(260, rows, 2), 99968u % starts);
}

TEST_F(Windows, RandomWindowsAreUniformInRangeAndDependOnTheSeed) {
  const int64_t length = 128, rows = 500;
  const Batches batches(*file_, length, Sampling::random, 1337);
  const uint64_t starts = kTokens - length;
  std::vector<uint64_t> drawn;
  for (uint64_t index = 0; index < 4; ++index)
    for (int64_t r = 0; r < rows; ++r) drawn.push_back(batches.window_start(index, rows, r));
  EXPECT_LT(*std::max_element(drawn.begin(), drawn.end()), starts);
  EXPECT_LT(*std::min_element(drawn.begin(), drawn.end()), starts / 100);
  EXPECT_GT(*std::max_element(drawn.begin(), drawn.end()), starts - starts / 100);
  const double mean = std::accumulate(drawn.begin(), drawn.end(), 0.0) / drawn.size();
  EXPECT_NEAR(mean / starts, 0.5, 0.03);
  EXPECT_GT(std::set<uint64_t>(drawn.begin(), drawn.end()).size(), drawn.size() - 40);

  const Batch a = draw(batches, 3, 8, 0, 8);
  for (int64_t r = 0; r < 8; ++r) expect_window(a, length, r, batches.window_start(3, 8, r));
  EXPECT_EQ(draw(Batches(*file_, length, Sampling::random, 1337), 3, 8, 0, 8), a);
  EXPECT_NE(draw(Batches(*file_, length, Sampling::random, 1338), 3, 8, 0, 8), a);
  EXPECT_NE(draw(batches, 4, 8, 0, 8), a);
}

// The window of a row depends on (seed, index, global row) alone: ranks' shards concatenate to
// the one-rank batch, and a resumed run (a new Batches) draws what the unbroken one drew.
TEST_F(Windows, ShardsOfTwoRanksConcatenateToTheOneRankBatch) {
  for (auto sampling : {Sampling::sequential, Sampling::random}) {
    const Batches batches(*file_, 32, sampling, 42);
    for (uint64_t index : {0ull, 5ull, 99ull}) {
      const Batch whole = draw(batches, index, 8, 0, 8);
      const Batch rank0 = draw(batches, index, 8, 0, 4), rank1 = draw(batches, index, 8, 4, 4);
      Batch joined = rank0;
      joined.inputs.insert(joined.inputs.end(), rank1.inputs.begin(), rank1.inputs.end());
      joined.targets.insert(joined.targets.end(), rank1.targets.begin(), rank1.targets.end());
      EXPECT_EQ(joined, whole) << sampling_name(sampling) << " " << index;
      EXPECT_EQ(draw(Batches(*file_, 32, sampling, 42), index, 8, 0, 8), whole);
    }
  }
}

TEST_F(Windows, TheShortestFileHoldsOneWindow) {
  TempDir dir;
  write_tokens(dir.at("w.bin"), {1, 2, 3, 4, 5}, TokenFormat::nanogpt, 2);
  const TokenFile file(dir.at("w.bin"));
  for (auto sampling : {Sampling::sequential, Sampling::random}) {
    const Batches batches(file, 4, sampling, 0);
    const Batch batch = draw(batches, 9, 2, 0, 2);
    EXPECT_EQ(batch.inputs, (std::vector<int64_t>{1, 2, 3, 4, 1, 2, 3, 4}));
    EXPECT_EQ(batch.targets, (std::vector<int64_t>{2, 3, 4, 5, 2, 3, 4, 5}));
  }
  EXPECT_EQ(message_of([&] { Batches(file, 5, Sampling::random, 0); }),
            dir.at("w.bin") +
                ": 5 tokens are fewer than one window needs (6: sequence_length 5 "
                "+ 1 for the last target)");
  EXPECT_EQ(message_of([&] { Batches(file, 0, Sampling::random, 0); }),
            dir.at("w.bin") + ": the sequence length must be at least 1, found 0");
}

TEST_F(Windows, IdsOutsideTheVocabularyNameTheirPosition) {
  TempDir dir;
  std::vector<uint32_t> ids(2000, 7);
  ids[1234] = 50300;
  write_tokens(dir.at("v.bin"), ids, TokenFormat::llmc, 2);
  const TokenFile file(dir.at("v.bin"));
  const Batches batches(file, 100, Sampling::sequential, 0);
  std::vector<int64_t> inputs(100), targets(100);
  // Row 12 covers 1200..1300: the bad id is an input.
  EXPECT_EQ(
      message_of([&] { batches.fill(0, 13, 12, 1, 50257, inputs.data(), targets.data()); }),
      dir.at("v.bin") + ": token 50300 at position 1234 is outside the vocabulary (50257 ids)");
  batches.fill(0, 13, 12, 1, 50301, inputs.data(), targets.data());
  EXPECT_EQ(inputs[34], 50300);
  // Row 11 covers 1100..1200: the bad id is its last target alone.
  ids[1234] = 7;
  ids[1200] = 60000;
  write_tokens(dir.at("t.bin"), ids, TokenFormat::nanogpt, 2);
  const TokenFile last(dir.at("t.bin"));
  const Batches by_100(last, 100, Sampling::sequential, 0);
  EXPECT_EQ(
      message_of([&] { by_100.fill(0, 12, 11, 1, 50257, inputs.data(), targets.data()); }),
      dir.at("t.bin") + ": token 60000 at position 1200 is outside the vocabulary (50257 ids)");
}

TEST_F(Windows, RowsOutsideTheMicroBatchAreRefused) {
  const Batches batches(*file_, 8, Sampling::sequential, 0);
  std::vector<int64_t> inputs(64), targets(64);
  EXPECT_EQ(message_of([&] { batches.fill(0, 4, 2, 3, 50257, inputs.data(), targets.data()); }),
            file_->path() + ": rows [2, 5) are not within the micro-batch's 4 rows");
  EXPECT_EQ(message_of([&] { batches.fill(0, 4, -1, 1, 50257, inputs.data(), targets.data()); }),
            file_->path() + ": rows [-1, 0) are not within the micro-batch's 4 rows");
  EXPECT_EQ(message_of([&] { batches.fill(0, 4, 0, 1, 0, inputs.data(), targets.data()); }),
            file_->path() + ": the vocabulary size must be at least 1, found 0");
}

TEST(SamplingNames, RoundTripAndUnknownOnesListTheValid) {
  for (auto sampling : {Sampling::sequential, Sampling::random})
    EXPECT_EQ(parse_sampling(sampling_name(sampling)), sampling);
  EXPECT_EQ(message_of([] { parse_sampling("shuffled"); }),
            "unknown sampling 'shuffled' (valid: sequential, random)");
}

}  // namespace
