// Data preparation: text files turned into train and validation token files, one token per byte
// (a 256-id vocabulary that needs no tokenizer), split as nanoGPT's
// data/shakespeare_char/prepare.py splits: the first 90% to train.bin, the rest to val.bin.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/data/tokens.h"

namespace blocks::data {

struct BytePrepareOptions {
  std::vector<std::string> inputs;            // read in this order, as one text
  std::string output_folder;                  // created if absent; gets train.bin and val.bin
  double validation_fraction = 0.1;           // of the bytes, the last ones; above 0 and below 1
  TokenFormat format = TokenFormat::nanogpt;  // nanogpt or llmc, 2-byte tokens
};

struct PreparedFile {
  std::string path;
  uint64_t tokens = 0;
};

struct BytePrepareSummary {
  PreparedFile train, validation;
  uint64_t input_bytes = 0;
  int64_t vocab_size = 256;
};

// Streams the inputs (never held whole in memory) into the two files, each written whole or not
// at all. Throws io::FileError for an input that is not a readable regular file or an output
// folder that cannot be one (before anything is written), DataError for a fraction outside
// (0, 1) or a split that would hold no tokens.
BytePrepareSummary prepare_bytes(const BytePrepareOptions& options);

}  // namespace blocks::data
