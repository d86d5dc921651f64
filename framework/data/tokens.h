// Token files for training, memory-mapped and never read whole: nanoGPT's headerless uint16
// files (data/*/prepare.py: `np.array(ids, dtype=np.uint16).tofile(path)`) and llm.c's files
// with a 1024-byte header (dev/data/data_common.py `write_datafile`). Torch-free.
//
//   blocks::data::TokenFile train("data/shakespeare_char/train.bin");  // format detected
//   int64_t ids[8];
//   train.read(0, 8, ids);
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/config/error.h"
#include "framework/io/files.h"

namespace blocks::data {

// A token file that cannot be used (its size, header or ids), or a batch that cannot be drawn.
class DataError : public Error {
 public:
  using Error::Error;
};

// How a token file is laid out. `automatic` reads llm.c's layout when the file starts with one
// of llm.c's magic numbers, else nanoGPT's.
enum class TokenFormat { automatic, nanogpt, llmc };

// "auto", "nanogpt" or "llmc"; anything else is a DataError listing those.
TokenFormat parse_token_format(const std::string& name);
std::string token_format_name(TokenFormat format);

// llm.c's header (dev/data/data_common.py HEADERS_INFO, llmc/dataloader.h on its llama3
// branch): 256 int32, header[0] the magic, header[1] the version, header[2] the token count.
// Each magic has one version and one token width.
inline constexpr int64_t kLlmcHeaderBytes = int64_t{256} * 4;
inline constexpr int32_t kLlmcGpt2Magic = 20240520;    // version 1, uint16 tokens
inline constexpr int32_t kLlmcLlama3Magic = 20240801;  // version 7, uint32 tokens

// One token file mapped read-only (MAP_SHARED: pages come from the page cache and are shared by
// every process reading the file, so 8 ranks on one file hold it once). Opening reads only the
// header: a 100 GB file opens in microseconds and costs memory only for the pages read.
// Tokens are little-endian (as numpy writes them on x86 and ARM).
class TokenFile {
 public:
  // Throws DataError for a size that is not whole tokens, an empty file, a bad llm.c header,
  // and io::FileError for a path that is not a readable regular file. `raw_token_bytes` (2 or
  // 4) is the width of a headerless (nanoGPT) file: nanoGPT writes 2, forks for vocabularies
  // over 65536 write 4; llm.c files say their own width.
  explicit TokenFile(std::string path, TokenFormat format = TokenFormat::automatic,
                     int raw_token_bytes = 2);
  TokenFile(TokenFile&& other) noexcept;
  TokenFile& operator=(TokenFile&& other) noexcept;
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile();

  const std::string& path() const { return path_; }
  size_t size() const { return size_; }  // tokens
  int token_bytes() const { return token_bytes_; }
  TokenFormat format() const { return format_; }  // nanogpt or llmc, never automatic

  // Throws DataError when `position` (or the range) is past the end.
  uint32_t at(size_t position) const;
  void read(size_t offset, size_t count, int64_t* out) const;

  // Tell the kernel how pages will be read (madvise; only a hint, the tokens are the same):
  // random windows turn read-ahead off (a window of a few KB costs one page, not 128 KB), a walk
  // through the file raises it.
  void advise_random() const;
  void advise_sequential() const;

 private:
  void check_range(size_t offset, size_t count) const;
  void unmap() noexcept;

  std::string path_;
  TokenFormat format_ = TokenFormat::nanogpt;
  int token_bytes_ = 2;
  size_t size_ = 0;
  void* map_ = nullptr;  // the whole file
  size_t map_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;  // past the header
};

// Writes a token file through io::AtomicFile (whole or not at all), `count` tokens in pieces,
// so a corpus larger than memory can be streamed. llm.c files of 2-byte tokens get the GPT-2
// header (magic 20240520, version 1), of 4-byte tokens the Llama 3 one (20240801, version 7).
class TokenWriter {
 public:
  // Throws DataError for `automatic`, a width other than 2 or 4, and (llm.c) a count that
  // does not fit the header's int32.
  TokenWriter(std::string path, TokenFormat format, int token_bytes, uint64_t count);
  TokenWriter(const TokenWriter&) = delete;
  TokenWriter& operator=(const TokenWriter&) = delete;
  ~TokenWriter();

  // Throws DataError when a token does not fit the width or more than `count` are written.
  void write(const uint32_t* tokens, size_t count);
  // Throws DataError unless exactly `count` tokens were written; then the file appears.
  void commit();

  uint64_t written() const { return written_; }

 private:
  std::unique_ptr<io::AtomicFile> file_;
  std::string path_;
  int token_bytes_;
  uint64_t count_, written_ = 0;
};

// Writes `tokens` as a whole file (tests, small corpora).
void write_tokens(const std::string& path, const std::vector<uint32_t>& tokens, TokenFormat format,
                  int token_bytes);

}  // namespace blocks::data
