#include "framework/text/unicode_forms.h"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <vector>

#include "framework/text/tokenizer.h"

namespace blocks::text {

bool parse_unicode_form(const std::string& name, UnicodeForm* form) {
  if (name == "NFC")
    *form = UnicodeForm::nfc;
  else if (name == "NFD")
    *form = UnicodeForm::nfd;
  else if (name == "NFKC")
    *form = UnicodeForm::nfkc;
  else if (name == "NFKD")
    *form = UnicodeForm::nfkd;
  else
    return false;
  return true;
}

std::string normalize(std::string_view utf8, UnicodeForm form) {
  // ASCII is in every form: most text takes no conversion.
  bool ascii = true;
  for (char c : utf8) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(utf8);
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* normalizer = form == UnicodeForm::nfc    ? unorm2_getNFCInstance(&status)
                                   : form == UnicodeForm::nfd  ? unorm2_getNFDInstance(&status)
                                   : form == UnicodeForm::nfkc ? unorm2_getNFKCInstance(&status)
                                                               : unorm2_getNFKDInstance(&status);
  auto check = [&](const char* what) {
    if (U_FAILURE(status))
      throw TokenizerError(std::string("ICU's ") + what + " failed: " + u_errorName(status));
  };
  check("normalizer");
  std::vector<UChar> wide(utf8.size() + 1);
  int32_t wide_size = 0;
  u_strFromUTF8(wide.data(), static_cast<int32_t>(wide.size()), &wide_size, utf8.data(),
                static_cast<int32_t>(utf8.size()), &status);
  check("UTF-8 conversion");
  // Compatibility forms can grow a character many times over (U+FDFA: 18).
  std::vector<UChar> out(static_cast<size_t>(wide_size) * 4 + 16);
  int32_t out_size = unorm2_normalize(normalizer, wide.data(), wide_size, out.data(),
                                      static_cast<int32_t>(out.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    status = U_ZERO_ERROR;
    out.resize(static_cast<size_t>(out_size));
    out_size = unorm2_normalize(normalizer, wide.data(), wide_size, out.data(), out_size, &status);
  }
  check("normalization");
  std::string result(static_cast<size_t>(out_size) * 3, '\0');
  int32_t result_size = 0;
  u_strToUTF8(result.data(), static_cast<int32_t>(result.size()), &result_size, out.data(),
              out_size, &status);
  check("UTF-8 conversion");
  result.resize(static_cast<size_t>(result_size));
  return result;
}

}  // namespace blocks::text
