#include "framework/text/tokenizer.h"

#include <filesystem>

#include "framework/text/byte_level_bpe.h"
#include "framework/text/sentencepiece.h"

namespace blocks::text {

namespace {

namespace fs = std::filesystem;

// Ids 0..255 are the text's bytes (blockc prepare --bytes).
class Bytes : public Tokenizer {
 public:
  std::vector<int64_t> encode(std::string_view text) const override {
    return std::vector<int64_t>(reinterpret_cast<const unsigned char*>(text.data()),
                                reinterpret_cast<const unsigned char*>(text.data()) + text.size());
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string out;
    for (int64_t id : ids) {
      check_id(id, 256, "bytes");
      out += static_cast<char>(id);
    }
    return out;
  }
  std::string piece(int64_t id) const override {
    check_id(id, 256, "bytes");
    if (id >= 0x20 && id < 0x7F) return std::string(1, static_cast<char>(id));
    char text[8];
    std::snprintf(text, sizeof text, "<0x%02X>", static_cast<unsigned>(id));
    return text;
  }
  int64_t vocab_size() const override { return 256; }
  std::string kind() const override { return "bytes"; }
};

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (path == "bytes") return std::make_unique<Bytes>();
  std::error_code ec;
  fs::path file(path);
  if (fs::is_directory(file, ec)) {
    const bool has_model = fs::exists(file / "tokenizer.model", ec);
    if (fs::exists(file / "tokenizer.json", ec)) {
      // Llama 2's and Mistral's folders hold both, and their tokenizer.json (BPE behind a
      // Metaspace-style normalizer) is not one blocks reads: the SentencePiece file it was
      // converted from encodes the same.
      try {
        return std::make_unique<ByteLevelBpe>((file / "tokenizer.json").string());
      } catch (const TokenizerError&) {
        if (!has_model) throw;
      }
      file /= "tokenizer.model";
    } else if (has_model)
      file /= "tokenizer.model";
    else
      throw TokenizerError(path + ": the folder holds no tokenizer.json or tokenizer.model");
  } else if (!fs::exists(file, ec)) {
    throw TokenizerError(path +
                         ": no such file or folder (a tokenizer.json, a tokenizer.model, "
                         "a folder holding one, or `bytes`)");
  }
  if (file.extension() == ".json") return std::make_unique<ByteLevelBpe>(file.string());
  return std::make_unique<SentencePiece>(file.string());
}

}  // namespace blocks::text
