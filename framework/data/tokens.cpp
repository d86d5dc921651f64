#include "framework/data/tokens.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

namespace blocks::data {

// Both formats store tokens little-endian and are read by copying bytes.
static_assert(std::endian::native == std::endian::little, "token files are little-endian");

namespace {

[[noreturn]] void fail(const std::string& message) { throw DataError(message); }

std::string bytes_text(uint64_t bytes) {
  return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

}  // namespace

TokenFormat parse_token_format(const std::string& name) {
  if (name == "auto") return TokenFormat::automatic;
  if (name == "nanogpt") return TokenFormat::nanogpt;
  if (name == "llmc") return TokenFormat::llmc;
  fail("unknown token format '" + name + "' (valid: auto, nanogpt, llmc)");
}

std::string token_format_name(TokenFormat format) {
  switch (format) {
    case TokenFormat::automatic:
      return "auto";
    case TokenFormat::nanogpt:
      return "nanogpt";
    case TokenFormat::llmc:
      return "llmc";
  }
  return "auto";
}

namespace {

// Where the tokens are in a file and how wide they are.
struct Layout {
  TokenFormat format;
  int token_bytes;
  uint64_t header_bytes;
  uint64_t tokens;
};

int32_t header_field(const unsigned char* bytes, size_t index) {
  int32_t value;
  std::memcpy(&value, bytes + 4 * index, 4);
  return value;
}

bool llmc_magic(int32_t magic) { return magic == kLlmcGpt2Magic || magic == kLlmcLlama3Magic; }

Layout nanogpt_layout(const std::string& path, uint64_t size, int token_bytes) {
  if (size % token_bytes != 0)
    fail(path + ": " + bytes_text(size) + " is not a whole number of " +
         std::to_string(token_bytes) + "-byte tokens");
  return {TokenFormat::nanogpt, token_bytes, 0, size / token_bytes};
}

// llm.c's checks (llmc/dataloader.h, dataloader_load_shard_ on the llama3 branch): a known
// magic, that magic's version, and a count that accounts for every byte after the header.
// `why` says how the layout was chosen, for a nanoGPT file taken for an llm.c one.
Layout llmc_layout(const std::string& path, const unsigned char* bytes, uint64_t size,
                   const std::string& why) {
  if (size < kLlmcHeaderBytes)
    fail(path + ": " + bytes_text(size) + " is shorter than llm.c's " +
         std::to_string(kLlmcHeaderBytes) + "-byte header" + why);
  const int32_t magic = header_field(bytes, 0), version = header_field(bytes, 1);
  if (!llmc_magic(magic))
    fail(path + ": the llm.c magic number is " + std::to_string(magic) + "; expected " +
         std::to_string(kLlmcGpt2Magic) + " (GPT-2, uint16 tokens) or " +
         std::to_string(kLlmcLlama3Magic) + " (Llama 3, uint32 tokens)");
  const bool gpt2 = magic == kLlmcGpt2Magic;
  const int expected_version = gpt2 ? 1 : 7;
  if (version != expected_version)
    fail(path + ": llm.c header version " + std::to_string(version) + " with magic " +
         std::to_string(magic) + "; llm.c writes version " + std::to_string(expected_version) +
         " for that magic" + why);
  const int token_bytes = gpt2 ? 2 : 4;
  const int64_t count = header_field(bytes, 2);
  if (count <= 0)
    fail(path + ": the llm.c header counts " + std::to_string(count) + " tokens" + why);
  const uint64_t expected = kLlmcHeaderBytes + static_cast<uint64_t>(count) * token_bytes;
  if (expected != size)
    fail(path + ": the llm.c header counts " + std::to_string(count) + " " +
         std::to_string(token_bytes) + "-byte tokens (" + bytes_text(expected) +
         " with the header) but the file has " + bytes_text(size) + why);
  return {TokenFormat::llmc, token_bytes, kLlmcHeaderBytes, static_cast<uint64_t>(count)};
}

Layout layout_of(const std::string& path, const unsigned char* bytes, uint64_t size,
                 TokenFormat format, int raw_token_bytes) {
  if (format == TokenFormat::nanogpt) return nanogpt_layout(path, size, raw_token_bytes);
  if (format == TokenFormat::llmc) return llmc_layout(path, bytes, size, "");
  if (size >= 4 && llmc_magic(header_field(bytes, 0)))
    return llmc_layout(path, bytes, size,
                       " (read as llm.c because the file starts with llm.c's magic number; "
                       "give the format nanogpt for a headerless file)");
  return nanogpt_layout(path, size, raw_token_bytes);
}

// Copies `count` little-endian tokens of type T, widened to int64.
template <class T>
void widen(const unsigned char* from, size_t count, int64_t* out) {
  for (size_t i = 0; i < count; ++i) {
    T value;
    std::memcpy(&value, from + i * sizeof(T), sizeof(T));
    out[i] = static_cast<int64_t>(value);
  }
}

}  // namespace

TokenFile::TokenFile(std::string path, TokenFormat format, int raw_token_bytes)
    : path_(std::move(path)) {
  if (raw_token_bytes != 2 && raw_token_bytes != 4)
    fail(path_ + ": headerless tokens are 2 or 4 bytes wide, found " +
         std::to_string(raw_token_bytes));
  io::check_input(path_);
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw io::FileError("cannot open " + path_ + ": " + std::strerror(errno));
  struct stat st {};
  const bool stated = ::fstat(fd, &st) == 0;
  const int stat_errno = errno;
  if (stated && st.st_size > 0) {
    map_bytes_ = static_cast<size_t>(st.st_size);
    map_ = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_SHARED, fd, 0);
  }
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file open
  if (!stated) throw io::FileError("cannot stat " + path_ + ": " + std::strerror(stat_errno));
  if (st.st_size == 0) fail(path_ + ": the file is empty; a token file holds at least 1 token");
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw io::FileError("cannot map " + path_ + ": " + std::strerror(map_errno));
  }
  try {
    const auto* bytes = static_cast<const unsigned char*>(map_);
    const Layout layout = layout_of(path_, bytes, map_bytes_, format, raw_token_bytes);
    format_ = layout.format;
    token_bytes_ = layout.token_bytes;
    size_ = layout.tokens;
    tokens_ = bytes + layout.header_bytes;
  } catch (...) {
    unmap();
    throw;
  }
}

TokenFile::TokenFile(TokenFile&& other) noexcept { *this = std::move(other); }

TokenFile& TokenFile::operator=(TokenFile&& other) noexcept {
  if (this == &other) return *this;
  unmap();
  path_ = std::move(other.path_);
  format_ = other.format_;
  token_bytes_ = other.token_bytes_;
  size_ = std::exchange(other.size_, 0);
  map_ = std::exchange(other.map_, nullptr);
  map_bytes_ = std::exchange(other.map_bytes_, 0);
  tokens_ = std::exchange(other.tokens_, nullptr);
  return *this;
}

TokenFile::~TokenFile() { unmap(); }

void TokenFile::unmap() noexcept {
  if (map_) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  tokens_ = nullptr;
  size_ = 0;
}

void TokenFile::check_range(size_t offset, size_t count) const {
  if (offset > size_ || count > size_ - offset)
    fail(path_ + ": tokens [" + std::to_string(offset) + ", " + std::to_string(offset + count) +
         ") are past the end of its " + std::to_string(size_) + " tokens");
}

uint32_t TokenFile::at(size_t position) const {
  int64_t value;
  read(position, 1, &value);
  return static_cast<uint32_t>(value);
}

void TokenFile::read(size_t offset, size_t count, int64_t* out) const {
  check_range(offset, count);
  const unsigned char* from = tokens_ + offset * token_bytes_;
  if (token_bytes_ == 2)
    widen<uint16_t>(from, count, out);
  else
    widen<uint32_t>(from, count, out);
}

// A failed madvise only loses the hint, so its result is not checked.
void TokenFile::advise_random() const {
  if (map_) ::madvise(map_, map_bytes_, MADV_RANDOM);
}

void TokenFile::advise_sequential() const {
  if (map_) ::madvise(map_, map_bytes_, MADV_SEQUENTIAL);
}

// --- writing

TokenWriter::TokenWriter(std::string path, TokenFormat format, int token_bytes, uint64_t count)
    : path_(std::move(path)), token_bytes_(token_bytes), count_(count) {
  if (format == TokenFormat::automatic)
    fail(path_ + ": writing tokens needs a format: nanogpt or llmc");
  if (token_bytes != 2 && token_bytes != 4)
    fail(path_ + ": tokens are 2 or 4 bytes wide, found " + std::to_string(token_bytes));
  // data_common.py asserts `len(toks) < 2**31`: header[2] is an int32.
  const uint64_t most = std::numeric_limits<int32_t>::max();
  if (format == TokenFormat::llmc && count > most)
    fail(path_ + ": llm.c's header counts tokens in an int32; " + std::to_string(count) +
         " tokens do not fit (at most " + std::to_string(most) + ")");
  file_ = std::make_unique<io::AtomicFile>(path_);
  if (format != TokenFormat::llmc) return;
  // The header exactly as write_datafile builds it: np.zeros(256, dtype=np.int32), then
  // magic, version and count.
  int32_t header[kLlmcHeaderBytes / 4] = {};
  header[0] = token_bytes == 2 ? kLlmcGpt2Magic : kLlmcLlama3Magic;
  header[1] = token_bytes == 2 ? 1 : 7;
  header[2] = static_cast<int32_t>(count);
  file_->write(header, sizeof header);
}

TokenWriter::~TokenWriter() = default;

void TokenWriter::write(const uint32_t* tokens, size_t count) {
  if (count > count_ - written_)
    fail(path_ + ": more than the " + std::to_string(count_) + " declared tokens were written");
  const uint32_t most = token_bytes_ == 2 ? 0xFFFFu : 0xFFFFFFFFu;
  std::vector<unsigned char> bytes(count * token_bytes_);
  for (size_t i = 0; i < count; ++i) {
    if (tokens[i] > most)
      fail(path_ + ": token " + std::to_string(tokens[i]) + " at position " +
           std::to_string(written_ + i) + " does not fit " + std::to_string(token_bytes_) +
           "-byte tokens (at most " + std::to_string(most) + ")");
    std::memcpy(bytes.data() + i * token_bytes_, &tokens[i], token_bytes_);  // little-endian
  }
  file_->write(bytes.data(), bytes.size());
  written_ += count;
}

void TokenWriter::commit() {
  if (written_ != count_)
    fail(path_ + ": " + std::to_string(written_) + " of the " + std::to_string(count_) +
         " declared tokens were written");
  file_->commit();
}

void write_tokens(const std::string& path, const std::vector<uint32_t>& tokens, TokenFormat format,
                  int token_bytes) {
  TokenWriter writer(path, format, token_bytes, tokens.size());
  constexpr size_t kPiece = size_t{1} << 16;  // bounds the byte buffer, not the file
  for (size_t begin = 0; begin < tokens.size(); begin += kPiece)
    writer.write(tokens.data() + begin, std::min(kPiece, tokens.size() - begin));
  writer.commit();
}

}  // namespace blocks::data
