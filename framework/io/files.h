// Every file blocks writes goes through here: outputs are checked before any work, written in
// full or not at all (a uniquely named temporary beside the target, checked writes, fsync,
// rename), and temporaries are removed on SIGINT, SIGTERM and SIGHUP. Torch-free: the config
// layer writes resolved configs, schemas and drawings through it too.
#pragma once

#include <string>
#include <string_view>

#include "framework/config/error.h"

namespace blocks::io {

// A file that cannot be read or written, named with the system's reason.
class FileError : public Error {
 public:
  using Error::Error;
};

// Throws FileError unless `path` can be replaced by a regular file: it is absent or a regular
// file (a symbolic link counts as what it names), and its folder exists. Devices, FIFOs,
// sockets, folders and /proc entries are refused before any work is done for them.
void check_output(const std::string& path);

// Throws FileError unless `path` can be an output folder: absent (to be created) or a folder;
// never inside /proc or /sys.
void check_output_folder(const std::string& path);

// Throws FileError unless `path` is a regular file that can be opened for reading: a FIFO, a
// device or a folder would block or read forever.
void check_input(const std::string& path);

// The whole of `path` (check_input first). Throws FileError naming the file.
std::string read_file(const std::string& path);

// A file written completely or not at all. Bytes go to a temporary of a unique name (mkstemp)
// in the target's folder, so two writers of one target never share it; commit() syncs it,
// renames it over the target (the only step readers can see) and syncs the folder. Destroyed
// without commit (an error, an exception) or interrupted by a signal, the temporary is removed
// and the old target stays as it was. A `path` that is a symbolic link is written through: the
// file it names is replaced and the link stays (as `cp` and editors do).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // Throws FileError on any failed or short write (a full disk, a file size limit).
  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temporary() const { return temp_; }

 private:
  std::string path_, target_, temp_;  // target_: path_ with symbolic links followed
  int fd_ = -1;
  int slot_ = -1;  // in the table the signal handler cleans
};

// Writes `text` to `path` through an AtomicFile.
void write_file(const std::string& path, std::string_view text);

}  // namespace blocks::io
