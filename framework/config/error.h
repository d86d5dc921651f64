// The one base of every exception blocks throws, so a program catches `blocks::Error` and a CLI
// maps causes to exit codes in one place. Each layer derives its causes (config::ConfigError,
// nn::InputError, nn::BuildError, weights::LoadError, ...); torch-free, like the config layer.
#pragma once

#include <stdexcept>
#include <string>

namespace blocks {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bug in how types or modules were registered (a name taken twice, an unknown kind): found
// when the registry is first built, never caused by a user's file.
class RegistrationError : public Error {
 public:
  using Error::Error;
};

}  // namespace blocks
