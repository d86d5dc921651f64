#include "tools/blockc/error_boundary.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <new>

namespace blockc {

int report(const blocks::Error& error) {
  spdlog::error("{}", error.what());
  return dynamic_cast<const blocks::RegistrationError*>(&error) ? 70 : 1;
}

int guarded(const std::function<int()>& command) {
  // Past a file size limit, write() then fails with EFBIG and is reported like a full disk,
  // instead of SIGXFSZ ending the program with its temporaries left behind.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    const int code = command();
    // What a command printed reached its reader only if the flush succeeds (a closed pipe,
    // /dev/full): otherwise say so instead of exiting 0.
    std::cout.flush();
    if (!std::cout) {
      spdlog::error("cannot write to stdout: {}", std::strerror(errno));
      return 1;
    }
    return code;
  } catch (const blocks::Error& e) {
    return report(e);
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory: the model or its inputs need more memory than this machine "
                  "could give");
  } catch (const std::filesystem::filesystem_error& e) {
    spdlog::error("{}", e.what());
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
  }
  return 1;
}

}  // namespace blockc
