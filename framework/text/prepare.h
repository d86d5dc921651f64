// Text files turned into the trainer's token files with a tokenizer (framework/data/prepare.h
// does it a byte a token): each file is one document, encoded whole and followed by the
// tokenizer's end-of-sequence id when it has one (nanoGPT's openwebtext/prepare.py appends
// eot_token to each document); the last fraction of the tokens goes to val.bin.
#pragma once

#include <string>
#include <vector>

#include "framework/data/prepare.h"
#include "framework/text/tokenizer.h"

namespace blocks::text {

struct TextPrepareOptions {
  std::vector<std::string> inputs;  // documents, in this order
  std::string output_folder;        // created if absent; gets train.bin and val.bin
  double validation_fraction = 0.1;
  data::TokenFormat format = data::TokenFormat::nanogpt;
};

struct TextPrepareSummary {
  data::PreparedFile train, validation;
  uint64_t input_bytes = 0;
  int64_t vocab_size = 0;
  int token_bytes = 2;  // 2 while the ids fit uint16, else 4 (llm.c's Llama 3 layout)
};

// Throws io::FileError for an unreadable input or output folder (before anything is written),
// TokenizerError for text the tokenizer cannot take (naming the file), data::DataError for a
// vocabulary past uint16 in nanoGPT's format, a fraction outside (0, 1) or an empty split.
TextPrepareSummary prepare_text(const TextPrepareOptions& options, const Tokenizer& tokenizer);

}  // namespace blocks::text
