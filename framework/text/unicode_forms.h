// Unicode normalization forms (NFC, NFD, NFKC, NFKD) through ICU, for tokenizer.json's
// normalizers (Qwen2's NFC): Hugging Face's tokenizers normalize each span between added tokens
// before pre-tokenizing it.
#pragma once

#include <string>
#include <string_view>

namespace blocks::text {

enum class UnicodeForm { nfc, nfd, nfkc, nfkd };

// "NFC" ... "NFKD" (tokenizer.json's normalizer types); false for another name.
bool parse_unicode_form(const std::string& name, UnicodeForm* form);

// `utf8` (valid UTF-8) in `form`.
std::string normalize(std::string_view utf8, UnicodeForm form);

}  // namespace blocks::text
