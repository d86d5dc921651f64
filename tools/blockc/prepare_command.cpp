#include "tools/blockc/prepare_command.h"

#include <iostream>

#include "framework/text/prepare.h"

namespace blockc {

namespace {

// The fraction's range as a usage error (exit 2): both splits must keep some text.
CLI::Validator open_fraction() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value) || !(value > 0 && value < 1))
          return "must be a number above 0 and below 1, found " + text;
        return {};
      },
      "in (0, 1)");
}

void print_file(const blocks::data::PreparedFile& file, const std::string& format, int width = 2) {
  std::cout << file.path << ": " << file.tokens << " tokens (" << format << ", " << width
            << "-byte ids)\n";
}

}  // namespace

void add_prepare_command(CLI::App& app, PrepareCommand& c) {
  c.command = app.add_subcommand(
      "prepare",
      "Turn text files into OUT_DIR/train.bin and OUT_DIR/val.bin, one token per byte "
      "(--bytes, vocabulary 256) or with a tokenizer (--text, --tokenizer); the last fraction "
      "is the validation split");
  auto* bytes = c.command->add_option("--bytes", c.options.inputs,
                                      "Text files, read in order as one text, a byte a token");
  auto* text = c.command
                   ->add_option("--text", c.texts,
                                "Text files, each a document, encoded with --tokenizer (each "
                                "followed by its end-of-sequence id)")
                   ->excludes(bytes);
  c.command
      ->add_option("--tokenizer", c.tokenizer,
                   "tokenizer.json, tokenizer.model, a Hugging Face folder holding one, or `bytes`")
      ->needs(text);
  text->needs("--tokenizer");
  // One of the two inputs, as a usage error (exit 2) like a missing option.
  c.command->parse_complete_callback([&c] {
    if (c.options.inputs.empty() && c.texts.empty())
      throw CLI::RequiredError("--bytes or --text (with --tokenizer)");
  });
  c.command->add_option("-o,--output", c.options.output_folder, "The folder to write (created)")
      ->required();
  c.command
      ->add_option("--validation-fraction", c.options.validation_fraction,
                   "The share of the bytes, at the end, that goes to val.bin (default 0.1)")
      ->check(open_fraction());
  c.command->add_option("--format", c.format, "nanogpt (headerless uint16) or llmc (llm.c header)")
      ->check(CLI::IsMember({"nanogpt", "llmc"}));
}

int run_prepare(PrepareCommand& c) {
  c.options.format = blocks::data::parse_token_format(c.format);
  if (!c.texts.empty()) {
    const auto tokenizer = blocks::text::load_tokenizer(c.tokenizer);
    blocks::text::TextPrepareOptions options{c.texts, c.options.output_folder,
                                             c.options.validation_fraction, c.options.format};
    const auto summary = blocks::text::prepare_text(options, *tokenizer);
    print_file(summary.train, c.format, summary.token_bytes);
    print_file(summary.validation, c.format, summary.token_bytes);
    std::cout << summary.input_bytes << " bytes of text; vocabulary " << summary.vocab_size
              << " (" << tokenizer->kind() << ")\n";
    return 0;
  }
  const auto summary = blocks::data::prepare_bytes(c.options);
  print_file(summary.train, c.format);
  print_file(summary.validation, c.format);
  std::cout << summary.input_bytes << " bytes of text; vocabulary " << summary.vocab_size
            << " (one id per byte)\n";
  return 0;
}

}  // namespace blockc
