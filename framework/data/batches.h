// The batches a trainer draws from a token file: windows of sequence_length + 1 tokens, inputs
// the first L and targets the last L (nanoGPT's train.py get_batch: x = data[i:i+L],
// y = data[i+1:i+1+L]). Torch-free: rows are filled into the caller's int64 buffers.
//
//   blocks::data::Batches batches(train, 1024, blocks::data::Sampling::random, 1337);
//   // micro-batch 7 has 32 rows over all ranks; this rank (of 2) fills rows 16..31:
//   batches.fill(7, 32, 16, 16, 50257, inputs.data(), targets.data());
//
// A window depends only on (seed, micro-batch index, global row) and the file: there is no
// state. So a run resumed at micro-batch k draws exactly what an unbroken run draws from k on,
// and R ranks that each fill their shard of a micro-batch's rows together draw exactly the rows
// one rank would draw alone (2 ranks x B rows == 1 rank x 2B rows, row for row).
#pragma once

#include <cstdint>
#include <string>

#include "framework/data/tokens.h"

namespace blocks::data {

// How windows are chosen.
//   sequential: consecutive non-overlapping windows walking the file from its start; global row
//     r of micro-batch `index` starts at ((index * rows + r) * L) mod (N - L), N the tokens.
//     Past the end it wraps to the start: one pass is an epoch.
//   random: each start uniform in [0, N - L) (nanoGPT's torch.randint(len(data) - block_size)),
//     drawn from a counter-based generator (splitmix64) of (seed, index, r).
enum class Sampling { sequential, random };

// "sequential" or "random"; anything else is a DataError listing those.
Sampling parse_sampling(const std::string& name);
std::string sampling_name(Sampling sampling);

// Which of `count` items (examples of a shard set) global row `row` of micro-batch `index`, of
// `rows` rows, takes: sequential walks them in order, (index * rows + row) mod count; random
// draws uniformly from (seed, index, row) as window starts are drawn. Stateless for the same
// reasons as windows.
uint64_t pick_item(Sampling sampling, uint64_t count, uint64_t seed, uint64_t index, int64_t rows,
                   int64_t row);

class Batches {
 public:
  // Keeps a reference to `file`, which must outlive it. Throws DataError when sequence_length
  // is below 1 or the file holds fewer than sequence_length + 1 tokens.
  Batches(const TokenFile& file, int64_t sequence_length, Sampling sampling, uint64_t seed);

  // Fills rows [row_begin, row_begin + row_count) of micro-batch `index`, which has `rows` rows
  // over all ranks: `inputs` and `targets` each hold row_count * sequence_length int64 ids,
  // row-major. Throws DataError for a row range outside [0, rows) and for an id outside
  // [0, vocab_size), naming the file and the id's position in it.
  void fill(uint64_t index, int64_t rows, int64_t row_begin, int64_t row_count, int64_t vocab_size,
            int64_t* inputs, int64_t* targets) const;

  // The first token of global row `row`'s window in micro-batch `index`.
  uint64_t window_start(uint64_t index, int64_t rows, int64_t row) const;

  int64_t sequence_length() const { return sequence_length_; }
  Sampling sampling() const { return sampling_; }
  uint64_t seed() const { return seed_; }
  const TokenFile& file() const { return *file_; }

 private:
  void fill_row(uint64_t start, int64_t vocab_size, int64_t* inputs, int64_t* targets) const;

  const TokenFile* file_;
  int64_t sequence_length_;
  Sampling sampling_;
  uint64_t seed_;
};

}  // namespace blocks::data
