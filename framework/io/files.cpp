#include "framework/io/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <utility>

namespace blocks::io {

namespace {

namespace fs = std::filesystem;

std::string reason() { return std::strerror(errno); }

[[noreturn]] void fail(const std::string& what) { throw FileError(what); }

// What a non-regular file is, for the refusal.
std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// /proc and /sys entries stat as regular files of size 0 but are kernel interfaces.
bool kernel_file(const std::string& path) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  const std::string s = p.string();
  return s.rfind("/proc/", 0) == 0 || s.rfind("/sys/", 0) == 0 || s == "/proc" || s == "/sys";
}

// The temporaries open now, for the signal handler: fixed slots of heap strings, so the
// handler only reads pointers and calls unlink (both async-signal-safe).
constexpr int kSlots = 64;
std::array<std::atomic<char*>, kSlots> temporaries{};
std::once_flag handlers_installed;

extern "C" void remove_temporaries_and_reraise(int signal) {
  for (auto& slot : temporaries)
    if (char* path = slot.load()) ::unlink(path);
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

void install_handlers() {
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction current {};
    ::sigaction(signal, nullptr, &current);
    // A program that chose its own handling (or to ignore the signal) keeps it.
    if (current.sa_handler != SIG_DFL) continue;
    struct sigaction action {};
    action.sa_handler = remove_temporaries_and_reraise;
    sigemptyset(&action.sa_mask);
    ::sigaction(signal, &action, nullptr);
  }
}

int remember(const std::string& temp) {
  std::call_once(handlers_installed, install_handlers);
  char* copy = ::strdup(temp.c_str());
  for (int i = 0; i < kSlots; ++i) {
    char* expected = nullptr;
    if (temporaries[i].compare_exchange_strong(expected, copy)) return i;
  }
  std::free(copy);  // more than kSlots at once: this one is left to the destructor alone
  return -1;
}

void forget(int slot) {
  if (slot < 0) return;
  std::free(temporaries[slot].exchange(nullptr));
}

}  // namespace

void check_output(const std::string& path) {
  if (path.empty()) fail("an output path is empty");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode))
      fail(path + ": is " + kind_of(st.st_mode) + "; outputs are regular files, refusing to "
                  "replace it");
    if (kernel_file(path)) fail(path + ": is a kernel interface file; refusing to write it");
  } else if (errno != ENOENT) {
    fail(path + ": cannot check the output: " + reason());
  }
  const fs::path folder = fs::path(path).parent_path();
  const std::string dir = folder.empty() ? "." : folder.string();
  if (kernel_file(dir + "/x")) fail(path + ": is in a kernel interface folder; refusing to write it");
  struct stat fst {};
  if (::stat(dir.c_str(), &fst) != 0) fail(path + ": cannot write into " + dir + ": " + reason());
  if (!S_ISDIR(fst.st_mode)) fail(path + ": " + dir + " is not a folder");
}

void check_output_folder(const std::string& path) {
  if (path.empty()) fail("an output folder path is empty");
  if (kernel_file(path + "/x")) fail(path + ": is a kernel interface folder; refusing to write it");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      fail(path + ": is " + (S_ISREG(st.st_mode) ? std::string("a file") : kind_of(st.st_mode)) +
           "; the output must be a folder");
    return;
  }
  if (errno != ENOENT) fail(path + ": cannot check the output folder: " + reason());
}

void check_input(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail("cannot open " + path + ": " + reason());
  if (!S_ISREG(st.st_mode))
    fail(path + ": is " + kind_of(st.st_mode) + "; inputs are regular files");
}

std::string read_file(const std::string& path) {
  check_input(path);
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail("cannot read " + path + ": " + reason());
  return text;
}

namespace {

// `path` with every symbolic link followed, also a dangling one (the file it would create).
std::string followed(const std::string& path) {
  fs::path p(path);
  for (int hops = 0; hops < 40; ++hops) {
    std::error_code error;
    if (!fs::is_symlink(fs::symlink_status(p, error))) return p.string();
    const fs::path next = fs::read_symlink(p, error);
    if (error) fail(path + ": cannot follow the symbolic link: " + error.message());
    p = next.is_absolute() ? next : p.parent_path() / next;
  }
  fail(path + ": too many levels of symbolic links");
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  check_output(path_);
  target_ = followed(path_);
  const fs::path target(target_);
  const fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::string pattern = (folder / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  fd_ = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd_ < 0) fail(path_ + ": cannot create a temporary in " + folder.string() + ": " + reason());
  temp_ = pattern;
  slot_ = remember(temp_);
  // mkstemp makes 0600; outputs are ordinary files (0666 less the umask), as ofstream makes.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
  forget(slot_);
}

void AtomicFile::write(const void* data, size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    // Linux writes at most about 2 GiB a call.
    const ssize_t n = ::write(fd_, bytes, std::min<size_t>(size, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(path_ + ": cannot write: " + (n < 0 ? reason() : "nothing written"));
    bytes += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  // Without the sync, a crash after the rename can leave `path` naming an empty file.
  if (::fsync(fd_) != 0) fail(path_ + ": cannot write (sync): " + reason());
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) fail(path_ + ": cannot write (close): " + reason());
  if (::rename(temp_.c_str(), target_.c_str()) != 0) fail(path_ + ": cannot replace: " + reason());
  temp_.clear();
  // The rename lives in the folder: sync it too, or a crash can bring the old file back.
  const fs::path folder = fs::path(target_).parent_path();
  const int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void write_file(const std::string& path, std::string_view text) {
  AtomicFile file(path);
  file.write(text);
  file.commit();
}

}  // namespace blocks::io
