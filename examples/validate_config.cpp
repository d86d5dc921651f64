// validate_config: check model config files as `blockc validate` does, and print each valid
// model's type and parameter count. It links blocks::types alone (the config layer and the
// registered types): no LibTorch, so it builds in seconds and starts in milliseconds.
//
//   validate_config examples/tiny.yaml share/blocks/configs/llama3-8b.yaml
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "blocks/registry.h"                // blocks::registry(): every registered config type
#include "framework/config/document.h"      // config::load_document
#include "framework/config/parameters.h"    // config::count_parameters

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " CONFIG.yaml...\n";
    return 2;
  }
  int status = 0;
  try {
    for (int i = 1; i < argc; ++i) {
      // Every problem of the file is collected ("FILE:LINE:COL: error: PATH: message", with
      // suggestions for misspelt keys); the program decides what to print and how to exit.
      blocks::config::Diagnostics diagnostics;
      auto doc = blocks::config::load_document(argv[i], blocks::registry(), diagnostics);
      std::cerr << diagnostics.format();
      if (!doc) {
        status = 1;
        continue;
      }
      const auto count = blocks::config::count_parameters(*doc->model);
      std::printf("%s: a valid %s of %.3g parameters\n", argv[i],
                  std::string(doc->model->type().name).c_str(),
                  static_cast<double>(count.total));
    }
  } catch (const std::exception& e) {  // an unreadable file
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return status;
}
