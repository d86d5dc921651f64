#include "framework/text/prepare.h"

#include <filesystem>

#include "framework/io/files.h"

namespace blocks::text {

TextPrepareSummary prepare_text(const TextPrepareOptions& options, const Tokenizer& tokenizer) {
  if (options.inputs.empty()) throw data::DataError("no input files to prepare");
  if (!(options.validation_fraction > 0 && options.validation_fraction < 1))
    throw data::DataError("the validation fraction must be above 0 and below 1");
  for (const auto& input : options.inputs) io::check_input(input);
  io::check_output_folder(options.output_folder);
  TextPrepareSummary summary;
  summary.vocab_size = tokenizer.vocab_size();
  summary.token_bytes = summary.vocab_size <= 65536 ? 2 : 4;
  if (summary.token_bytes == 4 && options.format != data::TokenFormat::llmc)
    throw data::DataError("the tokenizer has " + std::to_string(summary.vocab_size) +
                          " ids, past nanoGPT's uint16 tokens: use --format llmc (uint32 tokens)");
  std::vector<uint32_t> tokens;
  for (const auto& input : options.inputs) {
    const std::string document = io::read_file(input);
    summary.input_bytes += document.size();
    std::vector<int64_t> ids;
    try {
      ids = tokenizer.encode(document);
    } catch (const TokenizerError& e) {
      throw TokenizerError(input + ": " + e.what());
    }
    if (tokenizer.eos) ids.push_back(*tokenizer.eos);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  }
  const uint64_t n = tokens.size();
  const auto train =
      static_cast<uint64_t>(static_cast<double>(n) * (1.0 - options.validation_fraction));
  if (train == 0 || train == n)
    throw data::DataError("the " + std::string(train == 0 ? "train" : "validation") + " split of " +
                          std::to_string(n) +
                          " tokens holds none; give more text or another "
                          "fraction");
  std::filesystem::create_directories(options.output_folder);
  const std::filesystem::path folder(options.output_folder);
  summary.train = {(folder / "train.bin").string(), train};
  summary.validation = {(folder / "val.bin").string(), n - train};
  data::write_tokens(summary.train.path, {tokens.begin(), tokens.begin() + train}, options.format,
                     summary.token_bytes);
  data::write_tokens(summary.validation.path, {tokens.begin() + train, tokens.end()},
                     options.format, summary.token_bytes);
  return summary;
}

}  // namespace blocks::text
