#include "framework/data/prepare.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <sstream>

#include "framework/io/files.h"

namespace blocks::data {

namespace {

[[noreturn]] void fail(const std::string& message) { throw DataError(message); }

// 0.1 as "0.1" (std::to_string writes "0.100000").
std::string number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

uint64_t file_bytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw io::FileError("cannot open " + path + ": " + std::strerror(errno));
  return static_cast<uint64_t>(st.st_size);
}

// Sends each byte, as a token id, to train until it has its share, then to validation.
class Splitter {
 public:
  Splitter(TokenWriter& train, TokenWriter& validation, uint64_t train_tokens)
      : train_(train), validation_(validation), train_left_(train_tokens) {}

  void put(const unsigned char* bytes, size_t count) {
    ids_.assign(bytes, bytes + count);
    const size_t to_train = static_cast<size_t>(std::min<uint64_t>(train_left_, count));
    train_.write(ids_.data(), to_train);
    validation_.write(ids_.data() + to_train, count - to_train);
    train_left_ -= to_train;
  }

 private:
  TokenWriter &train_, &validation_;
  uint64_t train_left_;
  std::vector<uint32_t> ids_;
};

struct CloseFile {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

// Reads exactly `expected` bytes (the size counted before writing began) into `splitter`.
void stream(const std::string& path, uint64_t expected, Splitter& splitter) {
  std::unique_ptr<std::FILE, CloseFile> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw io::FileError("cannot open " + path + ": " + std::strerror(errno));
  std::vector<unsigned char> buffer(size_t{1} << 20);
  for (uint64_t left = expected; left > 0;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, buffer.size()));
    const size_t got = std::fread(buffer.data(), 1, want, file.get());
    if (got == 0) {
      if (std::ferror(file.get()))
        throw io::FileError("cannot read " + path + ": " + std::strerror(errno));
      fail(path + ": the file shrank while it was read (" + std::to_string(expected) +
           " bytes expected)");
    }
    splitter.put(buffer.data(), got);
    left -= got;
  }
}

// The tokens of `n` that go to train: shakespeare_char/prepare.py's
// train_data = data[:int(n*0.9)] with 0.9 = 1 - fraction. Both splits must hold some.
uint64_t train_share(uint64_t n, double fraction) {
  if (!(fraction > 0 && fraction < 1))
    fail("the validation fraction must be above 0 and below 1, found " + number(fraction));
  const auto train = static_cast<uint64_t>(static_cast<double>(n) * (1.0 - fraction));
  if (train == 0 || train == n)
    fail(std::string("the ") + (train == 0 ? "train" : "validation") + " split of " +
         std::to_string(n) + (n == 1 ? " byte" : " bytes") + " of text at a validation " +
         "fraction of " + number(fraction) + " holds no tokens; give more text or another " +
         "fraction");
  return train;
}

}  // namespace

BytePrepareSummary prepare_bytes(const BytePrepareOptions& options) {
  if (options.inputs.empty()) fail("no input files to prepare");
  // Every input and the folder are checked before anything is written.
  std::vector<uint64_t> sizes;
  for (const auto& input : options.inputs) {
    io::check_input(input);
    sizes.push_back(file_bytes(input));
  }
  BytePrepareSummary summary;
  summary.input_bytes = std::accumulate(sizes.begin(), sizes.end(), uint64_t{0});
  const uint64_t train_tokens = train_share(summary.input_bytes, options.validation_fraction);
  io::check_output_folder(options.output_folder);
  std::filesystem::create_directories(options.output_folder);

  const std::filesystem::path folder(options.output_folder);
  summary.train = {(folder / "train.bin").string(), train_tokens};
  summary.validation = {(folder / "val.bin").string(), summary.input_bytes - train_tokens};
  TokenWriter train(summary.train.path, options.format, 2, summary.train.tokens);
  TokenWriter validation(summary.validation.path, options.format, 2, summary.validation.tokens);
  Splitter splitter(train, validation, train_tokens);
  for (size_t i = 0; i < options.inputs.size(); ++i) stream(options.inputs[i], sizes[i], splitter);
  train.commit();
  validation.commit();
  return summary;
}

}  // namespace blocks::data
