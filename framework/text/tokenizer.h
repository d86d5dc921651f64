// Tokenizers, torch-free: Hugging Face's tokenizer.json byte-level BPE (GPT-2, Llama 3, Qwen2),
// SentencePiece tokenizer.model, BPE (Llama 2, Mistral) or unigram (T5, Kosmos-2), and bytes
// (ids 0..255, for models trained on `blockc prepare --bytes` files).
//
//   auto tokenizer = blocks::text::load_tokenizer("hf/gpt2");   // a folder, a file, or "bytes"
//   std::vector<int64_t> ids = tokenizer->encode("Hello world");
//   std::string text = tokenizer->decode(ids);
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/config/error.h"

namespace blocks::text {

// A tokenizer file that cannot be used, or text or ids it cannot take.
class TokenizerError : public Error {
 public:
  using Error::Error;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // The ids of `text` (UTF-8; invalid UTF-8 is a TokenizerError naming the byte offset). Added
  // tokens written in the text (`<|endoftext|>`) become their ids; no BOS is prepended.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // The text of `ids`; an id outside the vocabulary is a TokenizerError. Bytes that do not form
  // UTF-8 become U+FFFD, as Hugging Face's decoders (errors="replace") give them.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // The vocabulary entry of `id` as the file writes it (GPT-2's "Ġworld", SentencePiece's
  // "▁world").
  virtual std::string piece(int64_t id) const = 0;
  // Ids 0..vocab_size() - 1, added tokens included.
  virtual int64_t vocab_size() const = 0;
  // What the file holds: "byte-level BPE", "SentencePiece BPE", "SentencePiece unigram",
  // "bytes".
  virtual std::string kind() const = 0;
  // The texts encode() reads as one token wherever they appear (tokenizer.json's added tokens,
  // SentencePiece's user-defined pieces).
  virtual std::vector<std::string> added_tokens() const { return {}; }
  // The beginning / end of sequence ids: as tokenizer_config.json beside a tokenizer.json names
  // them, else by their usual names (<|begin_of_text|>, <|end_of_text|>, <|endoftext|>).
  std::optional<int64_t> bos, eos;
};

// `path`: "bytes"; a tokenizer.json or tokenizer.model file; or a folder holding one (a Hugging
// Face folder: tokenizer.json first, its tokenizer.model where blocks cannot read the json).
// Throws TokenizerError naming the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// The first text in `text` shaped as a special token (`<|name|>`, as GPT-2, Llama 3 and Qwen2
// write theirs) that `tokenizer` does not read as one, with its byte offset; npos when none.
// Such a text becomes plain pieces, which a prompt that means the token never wants.
std::pair<std::string, size_t> unknown_special_token(const Tokenizer& tokenizer,
                                                     std::string_view text);

// The byte offset of the first byte of `text` that is not valid UTF-8, or npos.
size_t invalid_utf8_at(std::string_view text);
// Throws TokenizerError naming that byte ("the text is not UTF-8: byte 3 (0xff) starts no
// character").
void check_utf8(std::string_view text);
// `bytes` with each byte that starts no UTF-8 character replaced by U+FFFD (decoders'
// errors="replace").
std::string replace_invalid_utf8(const std::string& bytes);
// Throws TokenizerError unless 0 <= id < size ("id 7 is outside the vocabulary (5 ids, WHAT)").
void check_id(int64_t id, int64_t size, const std::string& what);

}  // namespace blocks::text
