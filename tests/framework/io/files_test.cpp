// framework/io/files.h: outputs checked before work, atomic writes that a full disk, a file size
// limit, a concurrent writer or a signal cannot turn into a partial or mixed file.
#include "framework/io/files.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/devices.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string error_of(const std::function<void()>& run) { return message_of<io::FileError>(run); }

TEST(Files, RefusesOutputsThatAreNotRegularFiles) {
  TempDir dir;
  const std::string device = character_device();
  ASSERT_FALSE(device.empty()) << "no character device in /dev";
  EXPECT_EQ(error_of([&] { io::check_output(device); }),
            device + ": is a character device; outputs are regular files, refusing to replace it");
  EXPECT_EQ(
      error_of([&] { io::check_output(dir.path().string()); }),
      dir.path().string() + ": is a folder; outputs are regular files, refusing to replace it");
  const std::string fifo = dir.at("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(error_of([&] { io::check_output(fifo); }),
            fifo + ": is a FIFO; outputs are regular files, refusing to replace it");
  EXPECT_EQ(error_of([] { io::check_output("/proc/x"); }),
            "/proc/x: is in a kernel interface folder; refusing to write it");
  EXPECT_EQ(error_of([] { io::check_output("/proc/self/comm"); }),
            "/proc/self/comm: is a kernel interface file; refusing to write it");
  EXPECT_EQ(error_of([&] { io::check_output(dir.at("none/x.yaml")); }),
            dir.at("none/x.yaml") + ": cannot write into " + dir.at("none") +
                ": No such file or directory");
  EXPECT_EQ(error_of([&] { io::check_output(dir.at("new.yaml")); }), "no error");
  // Inputs: a FIFO would block a reader forever.
  EXPECT_EQ(error_of([&] { io::check_input(fifo); }),
            fifo + ": is a FIFO; inputs are regular files");
  EXPECT_EQ(error_of([&] { io::check_input(dir.at("missing")); }),
            "cannot open " + dir.at("missing") + ": No such file or directory");
  // Folders for checkpoints.
  EXPECT_EQ(error_of([&] { io::check_output_folder(dir.write("file", "x")); }),
            dir.at("file") + ": is a file; the output must be a folder");
  EXPECT_EQ(error_of([] { io::check_output_folder("/proc/x"); }),
            "/proc/x: is a kernel interface folder; refusing to write it");
  // The device node is untouched.
  struct stat st {};
  ASSERT_EQ(::stat(device.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST(Files, WritesReplaceTheTargetAtOnceWithItsMode) {
  TempDir dir;
  const std::string path = dir.write("out.txt", "old");
  io::write_file(path, "new text");
  EXPECT_EQ(read(path), "new text");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"out.txt"});
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

// An output that is a symbolic link is written through: the file it names gets the new bytes
// and the link stays a link (before, the rename replaced the link by a regular file), also
// through a chain of two links and a link whose target does not exist yet.
TEST(Files, WritesThroughSymbolicLinks) {
  TempDir dir;
  const std::string real = dir.write("real.txt", "old");
  ::mkdir(dir.at("sub").c_str(), 0755);
  const std::string link = dir.at("sub/link.txt"), chain = dir.at("chain.txt");
  ASSERT_EQ(::symlink("../real.txt", link.c_str()), 0);
  ASSERT_EQ(::symlink(link.c_str(), chain.c_str()), 0);
  io::write_file(chain, "new");
  EXPECT_EQ(read(real), "new");
  struct stat st {};
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::lstat(chain.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"chain.txt", "real.txt", "sub"}));
  const std::string dangling = dir.at("dangling.txt");
  ASSERT_EQ(::symlink("made.txt", dangling.c_str()), 0);
  io::write_file(dangling, "made");
  EXPECT_EQ(read(dir.at("made.txt")), "made");
  ASSERT_EQ(::lstat(dangling.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

// Item 6 (disk full): a write the system refuses is an error, and the old file is kept. The
// file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) fails write() with EFBIG as a full disk fails
// it with ENOSPC, without needing a small filesystem.
TEST(Files, AFailedWriteKeepsTheOldFileAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.write("big.bin", "previous");
  const pid_t child = ::fork();
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      io::write_file(path, std::string(100'000, 'x'));
    } catch (const io::FileError& e) {
      const std::string expected = path + ": cannot write: File too large";
      ::_exit(std::string(e.what()) == expected ? 3 : 4);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3) << "0: the write passed; 4: another message";
  EXPECT_EQ(read(path), "previous");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"big.bin"});
}

// Item 5: writers of one target at once never share a temporary: each result is one writer's
// whole text, never a mix.
TEST(Files, ConcurrentWritersNeverMix) {
  TempDir dir;
  const std::string path = dir.at("shared.txt");
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w)
    writers.emplace_back([&, w] {
      const std::string text(200'000, static_cast<char>('a' + w));
      for (int i = 0; i < 5; ++i) io::write_file(path, text);
    });
  for (auto& t : writers) t.join();
  const std::string result = read(path);
  ASSERT_EQ(result.size(), 200'000u);
  EXPECT_EQ(result, std::string(200'000, result[0]));
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"shared.txt"});
}

TEST(Files, AnUncommittedFileLeavesNothing) {
  TempDir dir;
  {
    io::AtomicFile file(dir.at("never.txt"));
    file.write("half");
    EXPECT_TRUE(fs::exists(file.temporary()));
  }
  EXPECT_TRUE(entries(dir.path()).empty());
}

// Item 7: SIGINT or SIGTERM while a file is being written removes its temporary; the old file
// stays as it was.
TEST(Files, SignalsRemoveTemporaries) {
  for (int signal : {SIGINT, SIGTERM}) {
    TempDir dir;
    const std::string path = dir.write("model.safetensors", "old");
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    if (child == 0) {
      io::AtomicFile file(path);
      file.write(std::string(1 << 20, 'x'));
      ::write(ready[1], "r", 1);
      for (;;) ::pause();
    }
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    EXPECT_EQ(entries(dir.path()).size(), 2u);  // the file and its temporary
    ::kill(child, signal);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == signal) << "the signal still ends it";
    EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"model.safetensors"});
    EXPECT_EQ(read(path), "old");
    ::close(ready[0]);
    ::close(ready[1]);
  }
}

}  // namespace
}  // namespace blocks::testing
