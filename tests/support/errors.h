// Test support: the message of the exception of type E that `run` throws, or "no error" (and a
// failure for any other exception), so that tests compare whole messages.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <string>

namespace blocks::testing {

template <class E>
std::string message_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "another exception: " << e.what();
    return "another exception";
  }
  return "no error";
}

}  // namespace blocks::testing
