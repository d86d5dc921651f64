#define PCRE2_CODE_UNIT_WIDTH 8
#include "framework/weights/name_pattern.h"

#include <pcre2.h>

namespace blocks::weights {

namespace {

std::string message_of(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0) return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buffer);
}

pcre2_code* code_of(const std::shared_ptr<void>& code) { return static_cast<pcre2_code*>(code.get()); }

// A name as a message shows it: long ones cut.
std::string shown(std::string_view name) {
  if (name.size() <= 80) return std::string(name);
  return std::string(name.substr(0, 60)) + "... (" + std::to_string(name.size()) + " bytes)";
}

}  // namespace

NamePattern::NamePattern(const std::string& text) : text_(text) {
  if (text.size() > kMaxLength)
    throw PatternError("regex of " + std::to_string(text.size()) + " bytes is over the " +
                       std::to_string(kMaxLength) + "-byte limit");
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                                   0, &error, &offset, nullptr);
  if (!code)
    throw PatternError("bad regex `" + text + "`: " + message_of(error) + " at offset " +
                       std::to_string(offset));
  code_ = std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
}

bool NamePattern::full_match(std::string_view name, std::vector<std::string>* captures) const {
  std::unique_ptr<pcre2_match_context, void (*)(pcre2_match_context*)> context(
      pcre2_match_context_create(nullptr), pcre2_match_context_free);
  pcre2_set_match_limit(context.get(), kMatchLimit);
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
      pcre2_match_data_create_from_pattern(code_of(code_), nullptr), pcre2_match_data_free);
  const int rc = pcre2_match(code_of(code_), reinterpret_cast<PCRE2_SPTR>(name.data()),
                             name.size(), 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, data.get(),
                             context.get());
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT)
    throw PatternError("regex `" + text_ + "` needs more than " + std::to_string(kMatchLimit) +
                       " steps to match `" + shown(name) +
                       "`: rewrite it without nested repetition");
  if (rc < 0) throw PatternError("regex `" + text_ + "` on `" + shown(name) + "`: " + message_of(rc));
  if (captures) {
    const uint32_t groups = pcre2_get_ovector_count(data.get());
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    uint32_t count = 0;
    pcre2_pattern_info(code_of(code_), PCRE2_INFO_CAPTURECOUNT, &count);
    captures->assign(count + 1, std::string());
    for (uint32_t i = 0; i <= count && i < groups; ++i)
      if (ovector[2 * i] != PCRE2_UNSET)
        (*captures)[i] = std::string(name.substr(ovector[2 * i], ovector[2 * i + 1] - ovector[2 * i]));
  }
  return true;
}

}  // namespace blocks::weights
