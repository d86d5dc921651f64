// Test support: a character device node to point outputs at. Sandboxes differ in what /dev holds
// (CI's has /dev/zero but no /dev/full), so tests take the first one this machine really has.
#pragma once

#include <sys/stat.h>

#include <string>

namespace blocks::testing {

// Writes to /dev/full fail and writes to /dev/zero or /dev/null vanish, so a program that did
// not refuse them would either fail late or report success for output nobody gets.
inline std::string character_device() {
  for (const char* path : {"/dev/full", "/dev/zero", "/dev/null"}) {
    struct stat st {};
    if (::stat(path, &st) == 0 && S_ISCHR(st.st_mode)) return path;
  }
  return "";
}

}  // namespace blocks::testing
