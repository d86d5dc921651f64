#include "framework/data/batches.h"

#include <algorithm>

namespace blocks::data {

namespace {

[[noreturn]] void fail(const std::string& message) { throw DataError(message); }

// splitmix64's output function (Steele, Lea and Flood 2014, as in java.util.SplittableRandom):
// a bijection that scatters neighbouring counters across all 64 bits.
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// 64 random bits that depend on the four counters alone.
uint64_t counter_bits(uint64_t seed, uint64_t index, uint64_t row, uint64_t attempt) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ index);
  h = splitmix64(h ^ row);
  return splitmix64(h ^ attempt);
}

// Uniform in [0, range) without modulo bias: Lemire's multiply-shift (2019, "Fast random integer
// generation in an interval"), whose rare rejections draw again with the next attempt counter,
// so the result still depends only on (seed, index, row).
uint64_t uniform_below(uint64_t range, uint64_t seed, uint64_t index, uint64_t row) {
  const uint64_t threshold = (0 - range) % range;  // 2^64 mod range
  for (uint64_t attempt = 0;; ++attempt) {
    const unsigned __int128 product =
        static_cast<unsigned __int128>(counter_bits(seed, index, row, attempt)) * range;
    if (static_cast<uint64_t>(product) >= threshold) return static_cast<uint64_t>(product >> 64);
  }
}

}  // namespace

Sampling parse_sampling(const std::string& name) {
  if (name == "sequential") return Sampling::sequential;
  if (name == "random") return Sampling::random;
  fail("unknown sampling '" + name + "' (valid: sequential, random)");
}

std::string sampling_name(Sampling sampling) {
  return sampling == Sampling::random ? "random" : "sequential";
}

uint64_t pick_item(Sampling sampling, uint64_t count, uint64_t seed, uint64_t index, int64_t rows,
                   int64_t row) {
  if (count == 0) fail("there are no items to draw from");
  if (sampling == Sampling::random)
    return uniform_below(count, seed, index, static_cast<uint64_t>(row));
  const unsigned __int128 global_row =
      static_cast<unsigned __int128>(index) * static_cast<uint64_t>(rows) +
      static_cast<uint64_t>(row);
  return static_cast<uint64_t>(global_row % count);
}

Batches::Batches(const TokenFile& file, int64_t sequence_length, Sampling sampling, uint64_t seed)
    : file_(&file), sequence_length_(sequence_length), sampling_(sampling), seed_(seed) {
  if (sequence_length < 1)
    fail(file.path() + ": the sequence length must be at least 1, found " +
         std::to_string(sequence_length));
  const uint64_t window = static_cast<uint64_t>(sequence_length) + 1;
  if (file.size() < window)
    fail(file.path() + ": " + std::to_string(file.size()) + " tokens are fewer than one window " +
         "needs (" + std::to_string(window) + ": sequence_length " +
         std::to_string(sequence_length) + " + 1 for the last target)");
  if (sampling == Sampling::random)
    file.advise_random();
  else
    file.advise_sequential();
}

uint64_t Batches::window_start(uint64_t index, int64_t rows, int64_t row) const {
  // The starts are [0, N - L): the window's last token, N - L + L = N - 1 at most, is in the
  // file.
  const uint64_t starts = file_->size() - static_cast<uint64_t>(sequence_length_);
  if (sampling_ == Sampling::random)
    return uniform_below(starts, seed_, index, static_cast<uint64_t>(row));
  // 128 bits: index * rows * L passes 2^64 in very long runs, and the wrap must stay exact.
  const unsigned __int128 global_row =
      static_cast<unsigned __int128>(index) * static_cast<uint64_t>(rows) +
      static_cast<uint64_t>(row);
  return static_cast<uint64_t>(global_row * static_cast<uint64_t>(sequence_length_) % starts);
}

void Batches::fill(uint64_t index, int64_t rows, int64_t row_begin, int64_t row_count,
                   int64_t vocab_size, int64_t* inputs, int64_t* targets) const {
  if (rows < 1 || row_begin < 0 || row_count < 0 || row_begin > rows - row_count)
    fail(file_->path() + ": rows [" + std::to_string(row_begin) + ", " +
         std::to_string(row_begin + row_count) + ") are not within the micro-batch's " +
         std::to_string(rows) + " rows");
  if (vocab_size < 1)
    fail(file_->path() + ": the vocabulary size must be at least 1, found " +
         std::to_string(vocab_size));
  for (int64_t i = 0; i < row_count; ++i) {
    const int64_t offset = i * sequence_length_;
    fill_row(window_start(index, rows, row_begin + i), vocab_size, inputs + offset,
             targets + offset);
  }
}

// The window's L + 1 tokens are read once: inputs take the first L, targets the same shifted by
// one plus the last token.
void Batches::fill_row(uint64_t start, int64_t vocab_size, int64_t* inputs,
                       int64_t* targets) const {
  const auto length = static_cast<size_t>(sequence_length_);
  file_->read(start, length, inputs);
  std::copy(inputs + 1, inputs + length, targets);
  targets[length - 1] = file_->at(start + length);
  auto check = [&](int64_t id, uint64_t position) {
    if (id >= vocab_size)
      fail(file_->path() + ": token " + std::to_string(id) + " at position " +
           std::to_string(position) + " is outside the vocabulary (" + std::to_string(vocab_size) +
           " ids)");
  };
  for (size_t i = 0; i < length; ++i) check(inputs[i], start + i);
  check(targets[length - 1], start + length);
}

}  // namespace blocks::data
