// Regular expressions over tensor names, matched with bounded work. std::regex recurses once
// per character (a 40,000-character name overflowed the stack) and backtracks without limit
// (`((\w+)\.?)+x` hung on ordinary names); PCRE2 backtracks on the heap and stops at a step
// limit, which this reports as an error naming the pattern and the name.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/config/error.h"

namespace blocks::weights {

// A pattern that does not compile, or a match that needed more work than the limit allows.
class PatternError : public Error {
 public:
  using Error::Error;
};

class NamePattern {
 public:
  // Steps (PCRE2's match limit) one match may take: names are short, so an ordinary pattern
  // needs a few hundred; a catastrophic one reaches this in milliseconds.
  static constexpr uint32_t kMatchLimit = 1'000'000;
  // Longest pattern accepted, in bytes.
  static constexpr size_t kMaxLength = 4096;

  // Compiles `text` (PCRE2 syntax; the ECMAScript subset mapping rules use reads the same).
  // Throws PatternError with PCRE2's reason and the offset.
  explicit NamePattern(const std::string& text);

  // Whether all of `name` matches. With `captures`, they receive group 0..N ("" for a group
  // that took no part). Throws PatternError when the match exceeds kMatchLimit.
  bool full_match(std::string_view name, std::vector<std::string>* captures = nullptr) const;

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::shared_ptr<void> code_;  // pcre2_code_8
};

}  // namespace blocks::weights
