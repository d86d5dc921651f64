#include "tools/blockc/tokenize_command.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "framework/io/files.h"
#include "framework/text/tokenizer.h"
#include "tools/blockc/json_output.h"

namespace blockc {

void add_tokenize_command(CLI::App& app, TokenizeCommand& c) {
  c.command = app.add_subcommand(
      "tokenize", "A tokenizer's ids and pieces for a text (or --decode: the text of ids)");
  c.command
      ->add_option("--tokenizer", c.tokenizer,
                   "tokenizer.json (byte-level BPE), tokenizer.model (SentencePiece BPE or "
                   "unigram), a Hugging Face folder holding one, or `bytes`")
      ->required();
  auto* text = c.command->add_option("--text", c.text, "the text to encode");
  auto* file =
      c.command->add_option("--file", c.file, "a file whose text to encode")->excludes(text);
  c.command->add_option("--decode", c.decode, "ids to decode instead")
      ->excludes(text)
      ->excludes(file);
  c.command->add_flag("--json", c.json, "one JSON object: ids and pieces (or text)");
}

int run_tokenize(const TokenizeCommand& c) {
  const auto tokenizer = blocks::text::load_tokenizer(c.tokenizer);
  if (!c.decode.empty()) {
    const std::string text = tokenizer->decode(c.decode);
    if (c.json)
      std::cout << json_line({{"text", text}});
    else
      std::cout << text << "\n";
    return 0;
  }
  std::string text = c.text;
  if (!c.file.empty()) {
    text = blocks::io::read_file(c.file);
  }
  const auto ids = tokenizer->encode(text);
  if (c.json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int64_t id : ids) pieces.push_back(tokenizer->piece(id));
    std::cout << json_line({{"ids", ids}, {"pieces", pieces}});
    return 0;
  }
  std::cout << ids.size() << " tokens (" << tokenizer->kind() << ", " << tokenizer->vocab_size()
            << " ids)\n";
  for (int64_t id : ids) std::cout << id << "\t" << tokenizer->piece(id) << "\n";
  return 0;
}

}  // namespace blockc
