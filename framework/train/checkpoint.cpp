#include "framework/train/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "framework/io/files.h"
#include "framework/weights/safetensors.h"

namespace blocks::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "step-";
const char* const kFiles[] = {"model.safetensors", "optimizer.safetensors"};

void sync_folder(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw io::FileError(path + ": cannot open folder to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw io::FileError(path + ": fsync failed: " + std::strerror(errno));
}

std::string hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

bool is_checkpoint_name(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0 || name.size() == std::strlen(kPrefix)) return false;
  return std::all_of(name.begin() + static_cast<long>(std::strlen(kPrefix)), name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

uint64_t file_hash(const std::string& path) {
  io::check_input(path);
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw io::FileError(path + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ size;
  if (size > 0) {
    void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      ::close(fd);
      throw io::FileError(path + ": cannot map: " + std::strerror(errno));
    }
    ::madvise(data, size, MADV_SEQUENTIAL);
    const auto* bytes = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      uint64_t word;
      std::memcpy(&word, bytes + i, 8);
      h = (h ^ word) * 0x100000001b3ULL;
      h ^= h >> 29;
    }
    for (; i < size; ++i) h = (h ^ bytes[i]) * 0x100000001b3ULL;
    ::munmap(data, size);
  }
  ::close(fd);
  return h;
}

std::string checkpoint_folder(const std::string& run_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "%s%08lld", kPrefix, static_cast<long long>(step));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::string> out;
  const fs::path folder = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return out;
  for (const auto& entry : fs::directory_iterator(folder, ec))
    if (entry.is_directory() && is_checkpoint_name(entry.path().filename().string()))
      out.push_back(entry.path().string());
  std::sort(out.rbegin(), out.rend());
  return out;
}

std::string save_checkpoint(const std::string& run_dir, const CheckpointContents& contents,
                            int64_t keep) {
  const fs::path parent = fs::path(run_dir) / "checkpoints";
  fs::create_directories(parent);
  const std::string target = checkpoint_folder(run_dir, contents.step);
  char pattern[256];
  std::snprintf(pattern, sizeof pattern, "%s/.%s.tmp-XXXXXX", parent.c_str(),
                fs::path(target).filename().c_str());
  if (!::mkdtemp(pattern))
    throw io::FileError(parent.string() + ": cannot create a folder: " + std::strerror(errno));
  const std::string temp = pattern;
  try {
    weights::write_safetensors(temp + "/model.safetensors", contents.model, contents.model_metadata);
    weights::write_safetensors(temp + "/optimizer.safetensors", contents.optimizer,
                               {{"format", "pt"}, {"producer", "blockc train"}});
    config::Json state = contents.extra;
    state["step"] = contents.step;
    state["micro_batches"] = contents.micro_batches;
    config::Json files = config::Json::object();
    for (const char* name : kFiles) {
      const std::string path = temp + "/" + name;
      files[name] = {{"bytes", fs::file_size(path)}, {"hash", hex(file_hash(path))}};
    }
    state["files"] = files;
    io::write_file(temp + "/state.json", state.dump(2) + "\n");
    sync_folder(temp);
    std::error_code ec;
    fs::remove_all(target, ec);  // a checkpoint of this step from before a resume
    if (::rename(temp.c_str(), target.c_str()) != 0)
      throw io::FileError(target + ": cannot rename the checkpoint into place: " +
                          std::strerror(errno));
    sync_folder(parent.string());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(temp, ec);
    throw;
  }
  const auto all = list_checkpoints(run_dir);
  for (size_t i = static_cast<size_t>(keep); i < all.size(); ++i) {
    std::error_code ec;
    fs::remove_all(all[i], ec);
  }
  return target;
}

config::Json read_checkpoint_state(const std::string& folder) {
  const std::string path = folder + "/state.json";
  std::ifstream in(path);
  if (!in) throw CheckpointError(path + ": missing");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return config::Json::parse(text.str());
  } catch (const std::exception& e) {
    throw CheckpointError(path + ": not valid JSON (" + e.what() + ")");
  }
}

void verify_checkpoint(const std::string& folder) {
  const config::Json state = read_checkpoint_state(folder);
  if (!state.contains("files") || !state.contains("step") || !state.contains("micro_batches"))
    throw CheckpointError(folder + "/state.json: lacks files, step or micro_batches");
  for (const char* name : kFiles) {
    const std::string path = folder + "/" + name;
    const auto& expected = state["files"].value(name, config::Json());
    if (!expected.is_object()) throw CheckpointError(folder + "/state.json: lacks " + name);
    std::error_code ec;
    const auto bytes = fs::file_size(path, ec);
    if (ec) throw CheckpointError(path + ": missing");
    if (bytes != expected.value("bytes", uint64_t{0}))
      throw CheckpointError(path + ": " + std::to_string(bytes) + " bytes, state.json says " +
                            std::to_string(expected.value("bytes", uint64_t{0})));
    if (hex(file_hash(path)) != expected.value("hash", std::string()))
      throw CheckpointError(path + ": its bytes differ from those saved (hash mismatch)");
  }
}

std::string newest_valid_checkpoint(const std::string& run_dir,
                                    std::vector<std::string>& skipped) {
  for (const auto& folder : list_checkpoints(run_dir)) {
    try {
      verify_checkpoint(folder);
      return folder;
    } catch (const Error& e) {
      skipped.push_back(e.what());
    }
  }
  return {};
}

}  // namespace blocks::train
