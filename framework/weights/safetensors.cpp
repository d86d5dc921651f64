// Reading and writing safetensors files.
//
// This file holds: the dtype table (safetensors names, bit widths, LibTorch types); the reader
// (mapping the file, parsing the header, and validating it with the rules, in the order, of
// the reference implementation's `read_metadata` / `Metadata::validate`, so that files from
// Hugging Face's writers load and damaged ones fail as they would there, though here with a
// message saying what is wrong; stricter only in rejecting unknown keys in a tensor entry);
// tensor views over the mapping; and the writer, which lays files out byte for byte as the
// reference does and replaces the target only once the whole file is on disk.
#include "framework/weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "framework/io/files.h"

// LibTorch gained 8-bit floats in 2.1 and unsigned 16/32/64-bit integers in 2.3.
#define BLOCKS_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||         \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace blocks::weights {

// ---------------------------------------------------------------------------------------------
// Dtypes

namespace {

struct Dtype {
  std::string_view name;
  uint64_t bits;                       // per element; the sub-byte floats pack several a byte
  std::optional<at::ScalarType> type;  // absent: this LibTorch cannot hold it
  std::string_view missing;            // why `type` is absent
};

constexpr std::string_view kNotInLibTorch = "is not supported by LibTorch";

// Every dtype the reference implementation knows: a file using any of them is valid, even
// where LibTorch cannot turn the tensor into an at::Tensor. (A vector, not a std::span: the
// fuzz build compiles this file as C++17.)
const std::vector<Dtype>& dtypes() {
  static const std::vector<Dtype> table = {
    {"BOOL", 8, at::kBool, {}},
    {"U8", 8, at::kByte, {}},
    {"I8", 8, at::kChar, {}},
    {"I16", 16, at::kShort, {}},
    {"F16", 16, at::kHalf, {}},
    {"BF16", 16, at::kBFloat16, {}},
    {"I32", 32, at::kInt, {}},
    {"F32", 32, at::kFloat, {}},
    {"F64", 64, at::kDouble, {}},
    {"I64", 64, at::kLong, {}},
    {"C64", 64, at::kComplexFloat, {}},
#if BLOCKS_TORCH_AT_LEAST(2, 3)
    {"U16", 16, at::ScalarType::UInt16, {}},
    {"U32", 32, at::ScalarType::UInt32, {}},
    {"U64", 64, at::ScalarType::UInt64, {}},
#else
    {"U16", 16, std::nullopt, kNotInLibTorch},
    {"U32", 32, std::nullopt, kNotInLibTorch},
    {"U64", 64, std::nullopt, kNotInLibTorch},
#endif
#if BLOCKS_TORCH_AT_LEAST(2, 1)
    {"F8_E4M3", 8, at::ScalarType::Float8_e4m3fn, {}},
    {"F8_E5M2", 8, at::ScalarType::Float8_e5m2, {}},
#else
    {"F8_E4M3", 8, std::nullopt, "needs LibTorch >= 2.1"},
    {"F8_E5M2", 8, std::nullopt, "needs LibTorch >= 2.1"},
#endif
    {"F8_E8M0", 8, std::nullopt, kNotInLibTorch},
    {"F6_E2M3", 6, std::nullopt, kNotInLibTorch},
    {"F6_E3M2", 6, std::nullopt, kNotInLibTorch},
    {"F4", 4, std::nullopt, kNotInLibTorch},
  };
  return table;
}

const Dtype* find_dtype(std::string_view name) {
  for (const Dtype& dtype : dtypes()) {
    if (dtype.name == name) return &dtype;
  }
  return nullptr;
}

std::string valid_dtype_names() {
  std::string names;
  for (const Dtype& dtype : dtypes()) {
    if (!names.empty()) names += ", ";
    names += dtype.name;
  }
  return names;
}

std::string unknown_dtype(std::string_view name) {
  return "unknown dtype `" + std::string(name) + "` (valid: " + valid_dtype_names() + ")";
}

// The LibTorch type of `name`, or why there is none (without the file or tensor, which only
// the caller knows).
at::ScalarType to_scalar_type(std::string_view name, std::string& why) {
  const Dtype* dtype = find_dtype(name);
  if (dtype == nullptr) {
    why = unknown_dtype(name);
  } else if (!dtype->type) {
    why = std::string(name) + " " + std::string(dtype->missing) + " (this build links " +
          TORCH_VERSION + ")";
  } else {
    return *dtype->type;
  }
  return at::ScalarType::Undefined;
}

}  // namespace

at::ScalarType scalar_type(const std::string& dtype) {
  std::string why;
  at::ScalarType type = to_scalar_type(dtype, why);
  if (type == at::ScalarType::Undefined) throw SafetensorsError("safetensors dtype " + why);
  return type;
}

std::string dtype_name(at::ScalarType type) {
  for (const Dtype& dtype : dtypes()) {
    if (dtype.type == type) return std::string(dtype.name);
  }
  throw SafetensorsError(std::string("LibTorch dtype ") + c10::toString(type) +
                         " has no safetensors equivalent");
}

// ---------------------------------------------------------------------------------------------
// Reading: the mapping

namespace {

constexpr uint64_t kLengthBytes = 8;
// The reference's MAX_HEADER_SIZE: larger headers are treated as hostile.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Tensor names are module paths (Hugging Face's longest are ~100 bytes); a longer name is
// hostile or broken, and refused before any name matching sees it.
constexpr size_t kMaxNameBytes = 4096;

// A refusal of `name` when it is over kMaxNameBytes.
void check_name_length(const std::string& path, const std::string& name) {
  if (name.size() > kMaxNameBytes)
    throw SafetensorsError(path + ": a tensor name of " + std::to_string(name.size()) +
                           " bytes (`" + name.substr(0, 40) + "...`) is over the " +
                           std::to_string(kMaxNameBytes) + "-byte limit");
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw SafetensorsError(path + ": " + what);
}

[[noreturn]] void fail(const std::string& path, const std::string& tensor,
                       const std::string& what) {
  fail(path, "tensor `" + tensor + "`: " + what);
}

std::string system_error(const std::string& doing) { return doing + ": " + std::strerror(errno); }

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Only an explicit close reports a failed write-back; the destructor's cannot.
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

}  // namespace

// The whole file, mapped private and writable: pages are copy-on-write, so an in-place op on a
// zero-copy tensor changes this process's copy, never the file, and does not fault as it would
// on a read-only mapping. MAP_NORESERVE keeps the kernel from charging the whole file against
// memory up front (as it would for a writable mapping), so files larger than RAM still map.
struct SafetensorsFile::Mapping {
  uint8_t* data = nullptr;
  size_t size = 0;
  uint64_t data_start = 0;  // where the data section begins: past the length and the header

  explicit Mapping(const std::string& path) {
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer; fstat then refuses it.
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) fail(path, system_error("cannot open"));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail(path, system_error("cannot stat"));
    if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
    // Checked before mapping, as mmap rejects empty files.
    if (static_cast<uint64_t>(st.st_size) < kLengthBytes) {
      fail(path, "file is " + std::to_string(st.st_size) +
                     " bytes, too short for the 8-byte header length");
    }
    size = static_cast<size_t>(st.st_size);
    void* mapped =
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd.get(), 0);
    if (mapped == MAP_FAILED) fail(path, system_error("cannot map"));
    data = static_cast<uint8_t*>(mapped);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { ::munmap(data, size); }
};

// ---------------------------------------------------------------------------------------------
// Reading: the header

namespace {

uint64_t read_le64(const uint8_t* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// The offset of the first byte that does not start a well-formed UTF-8 sequence, or npos.
// nlohmann::json would reject bad bytes inside strings too, but only this names the cause.
size_t invalid_utf8_at(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<uint8_t>(text[i]);
    size_t extra;
    uint32_t code, smallest;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      extra = 1, code = lead & 0x1F, smallest = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2, code = lead & 0x0F, smallest = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3, code = lead & 0x07, smallest = 0x10000;
    } else {
      return i;
    }
    if (text.size() - i <= extra) return i;
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return i;
      code = (code << 6) | (next & 0x3F);
    }
    // Overlong encodings, UTF-16 surrogates and code points past Unicode are all invalid.
    if (code < smallest || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
    i += extra + 1;
  }
  return std::string_view::npos;
}

// The header's JSON text, after the checks the reference makes before parsing it.
std::string_view header_text(const std::string& path, const uint8_t* file, uint64_t size) {
  const uint64_t length = read_le64(file);
  if (length > kMaxHeaderBytes) {
    fail(path, "header length " + std::to_string(length) + " exceeds the " +
                   std::to_string(kMaxHeaderBytes) + "-byte limit");
  }
  if (length > size - kLengthBytes) {
    fail(path, "header length " + std::to_string(length) + " runs past the end of the file (" +
                   std::to_string(size - kLengthBytes) + " bytes follow the length)");
  }
  std::string_view text(reinterpret_cast<const char*>(file + kLengthBytes), length);
  if (size_t at = invalid_utf8_at(text); at != std::string_view::npos) {
    fail(path, "header is not valid UTF-8 (at header byte " + std::to_string(at) + ")");
  }
  return text;
}

nlohmann::json parse_header(const std::string& path, std::string_view text) {
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object())
    fail(path, std::string("header is a JSON ") + header.type_name() + ", not an object");
  return header;
}

std::map<std::string, std::string> parse_metadata(const std::string& path,
                                                  const nlohmann::json& value) {
  std::map<std::string, std::string> metadata;
  // The reference reads "__metadata__" as an Option, so null means none.
  if (value.is_null()) return metadata;
  if (!value.is_object()) {
    fail(path,
         std::string("__metadata__ is a JSON ") + value.type_name() + ", not an object of strings");
  }
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) {
      fail(path, "__metadata__ `" + key + "` is a JSON " + text.type_name() + ", not a string");
    }
    metadata.emplace(key, text.get<std::string>());
  }
  return metadata;
}

// JSON's non-negative integers; nlohmann parses exactly those as unsigned.
bool is_count(const nlohmann::json& value) { return value.is_number_unsigned(); }

std::vector<int64_t> parse_shape(const std::string& path, const std::string& name,
                                 const nlohmann::json& value) {
  const bool ok =
      value.is_array() && std::all_of(value.begin(), value.end(), [](const auto& d) {
        return is_count(d) && d.template get<uint64_t>() <=
                                  static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      });
  if (!ok) fail(path, name, "shape " + value.dump() + " is not an array of non-negative integers");
  return value.get<std::vector<int64_t>>();
}

std::pair<uint64_t, uint64_t> parse_offsets(const std::string& path, const std::string& name,
                                            const nlohmann::json& value) {
  if (!value.is_array() || value.size() != 2 || !is_count(value[0]) || !is_count(value[1])) {
    fail(path, name, "data_offsets " + value.dump() + " are not two non-negative integers");
  }
  return {value[0].get<uint64_t>(), value[1].get<uint64_t>()};
}

TensorInfo parse_tensor(const std::string& path, const std::string& name,
                        const nlohmann::json& entry) {
  if (!entry.is_object()) {
    fail(path, name, std::string("entry is a JSON ") + entry.type_name() + ", not an object");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) fail(path, name, std::string("missing `") + key + "`");
  }
  for (const auto& item : entry.items()) {
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets") {
      fail(path, name, "unexpected key `" + item.key() + "` (expected dtype, shape, data_offsets)");
    }
  }
  const nlohmann::json& dtype = entry["dtype"];
  if (!dtype.is_string()) fail(path, name, "dtype " + dtype.dump() + " is not a string");
  if (!find_dtype(dtype.get<std::string>())) {
    fail(path, name, unknown_dtype(dtype.get<std::string>()));
  }
  TensorInfo info;
  info.name = name;
  info.dtype = dtype.get<std::string>();
  info.shape = parse_shape(path, name, entry["shape"]);
  std::tie(info.begin, info.end) = parse_offsets(path, name, entry["data_offsets"]);
  return info;
}

std::string describe(const TensorInfo& info) {
  std::string text = info.dtype + " [";
  for (size_t i = 0; i < info.shape.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(info.shape[i]);
  }
  return text + "]";
}

std::string offsets_text(const TensorInfo& info) {
  return "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "]";
}

// The reference's `Metadata::validate` for one tensor on its own: its offsets hold exactly the
// bytes its dtype and shape need. Checked before the tiling, so that a tensor whose offsets are
// wrong is the one named, not the neighbour it leaves a gap before.
void validate_tensor(const std::string& path, const TensorInfo& info) {
  const std::string offsets = offsets_text(info);
  if (info.end < info.begin) fail(path, info.name, offsets + " end before they begin");
  uint64_t bits = find_dtype(info.dtype)->bits;
  for (int64_t dim : info.shape) {
    if (__builtin_mul_overflow(bits, static_cast<uint64_t>(dim), &bits)) {
      fail(path, info.name, describe(info) + " is too large to address (overflows 64 bits)");
    }
  }
  if (bits % 8 != 0) {
    fail(path, info.name,
         describe(info) + " is " + std::to_string(bits) + " bits, not a whole number of bytes");
  }
  const uint64_t held = info.end - info.begin;
  if (held != bits / 8) {
    fail(path, info.name,
         offsets + " hold " + std::to_string(held) + " bytes, but " + describe(info) + " needs " +
             std::to_string(bits / 8));
  }
}

// The reference's tiling rule: each tensor starts where the previous one (by offset) ended. A
// gap or an overlap does not say which of the two tensors is wrong, so both are named.
void validate_tiling(const std::string& path, const std::vector<TensorInfo>& tensors,
                     const TensorInfo& info, const TensorInfo* previous) {
  const uint64_t start = previous ? previous->end : 0;
  const std::string before = previous ? "`" + previous->name + "` " + offsets_text(*previous)
                                      : std::string("the start of the data section");
  if (info.begin < start) {
    fail(path, "tensors `" + previous->name + "` " + offsets_text(*previous) + " and `" +
                   info.name + "` " + offsets_text(info) + " overlap in bytes [" +
                   std::to_string(info.begin) + ", " +
                   std::to_string(std::min(start, info.end)) + ")");
  }
  if (info.begin > start) {
    // A tensor elsewhere of exactly the hole's size is the likely owner (offsets shifted).
    const uint64_t hole = info.begin - start;
    const TensorInfo* fits = nullptr;
    int count = 0;
    for (const TensorInfo& t : tensors) {
      if (&t != &info && &t != previous && t.end - t.begin == hole) {
        fits = &t;
        ++count;
      }
    }
    fail(path, "no tensor holds bytes [" + std::to_string(start) + ", " +
                   std::to_string(info.begin) + ") of the data section, between " + before +
                   " and `" + info.name + "` " + offsets_text(info) +
                   (count == 1 ? "; `" + fits->name + "` " + offsets_text(*fits) +
                                     " is that size: are its offsets wrong?"
                               : std::string()));
  }
}

struct Header {
  uint64_t data_start = 0;
  std::vector<TensorInfo> tensors;  // by offset
  std::map<std::string, std::string> metadata;
};

Header read_header(const std::string& path, const uint8_t* file, uint64_t available,
                   uint64_t size) {
  if (available < kLengthBytes || size < kLengthBytes) {
    fail(path, "file is " + std::to_string(size) +
                   " bytes, too short for the 8-byte header length");
  }
  const uint64_t length = read_le64(file);
  if (length <= kMaxHeaderBytes && length <= size - kLengthBytes &&
      length > available - kLengthBytes) {
    fail(path, "header length " + std::to_string(length) + " runs past the " +
                   std::to_string(available - kLengthBytes) + " header bytes given");
  }
  const std::string_view text = header_text(path, file, size);
  const nlohmann::json json = parse_header(path, text);
  Header header;
  header.data_start = kLengthBytes + text.size();
  for (const auto& [key, value] : json.items()) {
    check_name_length(path, key);
    if (key == "__metadata__") {
      header.metadata = parse_metadata(path, value);
    } else {
      header.tensors.push_back(parse_tensor(path, key, value));
    }
  }
  // The reference sorts by offsets before validating: older writers ordered entries by name.
  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const TensorInfo& a, const TensorInfo& b) {
                     return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
                   });
  for (const TensorInfo& info : header.tensors) validate_tensor(path, info);
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& info : header.tensors) {
    validate_tiling(path, header.tensors, info, previous);
    previous = &info;
  }
  const uint64_t data_bytes = size - kLengthBytes - text.size();
  const uint64_t used = previous ? previous->end : 0;
  if (used != data_bytes) {
    fail(path, "the tensors end at byte " + std::to_string(used) +
                   " of the data section, but it holds " + std::to_string(data_bytes) + " bytes (" +
                   (used > data_bytes ? "truncated file" : "trailing data") + ")");
  }
  return header;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reading: the file and its tensors

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = std::make_shared<Mapping>(path);
  Header header =
      read_header(path, file.mapping_->data, file.mapping_->size, file.mapping_->size);
  file.mapping_->data_start = header.data_start;
  file.tensors_ = std::move(header.tensors);
  file.metadata_ = std::move(header.metadata);
  for (size_t i = 0; i < file.tensors_.size(); ++i) file.index_.emplace(file.tensors_[i].name, i);
  return file;
}

std::vector<TensorInfo> SafetensorsFile::parse_header(std::string_view bytes, uint64_t file_size,
                                                      const std::string& path) {
  return read_header(path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                     file_size)
      .tensors;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) fail(path_, "no tensor `" + name + "`");
  std::string why;
  const at::ScalarType type = to_scalar_type(info->dtype, why);
  if (type == at::ScalarType::Undefined) fail(path_, name, why);

  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  const size_t bytes = info->end - info->begin;
  // An empty tensor's offset may be the end of the mapping; it needs no memory at all.
  if (bytes == 0) return at::empty(info->shape, options);
  uint8_t* data = mapping_->data + mapping_->data_start + info->begin;
  if (reinterpret_cast<uintptr_t>(data) % c10::elementSize(type) == 0) {
    return at::from_blob(
        data, info->shape, [keep = mapping_](void*) {}, options);
  }
  // Kernels may assume aligned elements, so an unaligned tensor gets its own memory.
  at::Tensor copy = at::empty(info->shape, options);
  std::memcpy(copy.data_ptr(), data, bytes);
  return copy;
}

namespace {

// Drops this process's pages of [begin, end) of a mapping: only pages wholly inside, since the
// first and last may hold a neighbour's bytes. MADV_DONTNEED on a private file mapping discards
// copy-on-write copies too; later reads map the file's pages again.
void release_pages(uint8_t* begin, uint8_t* end) {
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  const uintptr_t last = reinterpret_cast<uintptr_t>(end) / page * page;
  // Only advice: a failure leaves the pages resident, never the data wrong.
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

// Source bytes per step of copy_into.
constexpr int64_t kChunkBytes = int64_t{16} << 20;

}  // namespace

void SafetensorsFile::release(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) fail(path_, "no tensor `" + name + "`");
  uint8_t* data = mapping_->data + mapping_->data_start;
  release_pages(data + info->begin, data + info->end);
}

namespace {
bool all_finite(const at::Tensor& t) {
  return !t.is_floating_point() || at::isfinite(t).all().item<bool>();
}
}  // namespace

bool SafetensorsFile::copy_into(const std::string& name, const at::Tensor& target) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) fail(path_, "no tensor `" + name + "`");
  std::string why;
  const at::ScalarType type = to_scalar_type(info->dtype, why);
  if (type == at::ScalarType::Undefined) fail(path_, name, why);
  int64_t numel = 1;
  for (int64_t dim : info->shape) numel *= dim;  // validated: fits, as its bytes do
  if (!target.defined() || target.numel() != numel) {
    fail(path_, name,
         describe(*info) + " has " + std::to_string(numel) + " elements, the target " +
             (target.defined() ? std::to_string(target.numel()) : std::string("none")));
  }
  if (numel == 0) return true;
  uint8_t* data = mapping_->data + mapping_->data_start + info->begin;
  const int64_t element = static_cast<int64_t>(c10::elementSize(type));
  const bool chunked = target.layout() == at::kStrided && target.is_contiguous() &&
                       reinterpret_cast<uintptr_t>(data) % element == 0;
  if (!chunked) {
    // Unaligned elements (tensor() copies them) or a target without a flat view: whole.
    target.copy_(tensor(name).view(target.sizes()));
    release_pages(data, mapping_->data + mapping_->data_start + info->end);
    return all_finite(target);
  }
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  const at::Tensor flat = target.view({numel});
  const int64_t step = std::max<int64_t>(1, kChunkBytes / element);
  bool finite = true;
  for (int64_t start = 0; start < numel; start += step) {
    const int64_t count = std::min(step, numel - start);
    uint8_t* begin = data + start * element;
    const at::Tensor source = at::from_blob(begin, {count}, options);
    const at::Tensor chunk = flat.narrow(0, start, count);
    chunk.copy_(source);
    if (finite && !all_finite(chunk)) finite = false;
    release_pages(begin, begin + count * element);
  }
  // The first and last pages, shared with neighbours in the middle of the tensor's chunks.
  release_pages(data, data + numel * element);
  return finite;
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

struct Entry {
  const std::string* name;
  const at::Tensor* tensor;
  std::string dtype;
  uint64_t begin, end;
};

// Names, dtypes and offsets, checked before anything touches the disk.
std::vector<Entry> plan(const std::string& path,
                        const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::vector<Entry> entries;
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") fail(path, "`__metadata__` cannot name a tensor");
    check_name_length(path, name);
    if (!names.insert(name).second) fail(path, name, "given twice");
    if (!tensor.defined()) fail(path, name, "undefined tensor");
    std::string dtype;
    try {
      dtype = dtype_name(tensor.scalar_type());
    } catch (const SafetensorsError& e) {
      fail(path, name, e.what());
    }
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
    entries.push_back({&name, &tensor, std::move(dtype), offset, offset + bytes});
    offset += bytes;
  }
  return entries;
}

template <class Json>
std::string to_json(const std::string& path, const Json& value) {
  try {
    return value.dump();
  } catch (const nlohmann::json::exception&) {
    fail(path, "a tensor name or metadata string is not valid UTF-8");
  }
}

// The header as the reference writes it: "__metadata__" first, then the tensors, padded with
// spaces to a multiple of 8 bytes so that the data section starts 8-aligned and every
// tensor's view can be zero-copy. Written by hand so that entries keep the caller's order.
std::string header_json(const std::string& path, const std::vector<Entry>& entries,
                        const std::map<std::string, std::string>& metadata) {
  std::string text = "{";
  if (!metadata.empty()) text += "\"__metadata__\":" + to_json(path, nlohmann::json(metadata));
  for (const Entry& entry : entries) {
    // Ordered like the reference's entries, so both write identical bytes.
    const nlohmann::ordered_json info = {{"dtype", entry.dtype},
                                         {"shape", entry.tensor->sizes().vec()},
                                         {"data_offsets", {entry.begin, entry.end}}};
    if (text.size() > 1) text += ",";
    text += to_json(path, nlohmann::json(*entry.name)) + ":" + to_json(path, info);
  }
  text += "}";
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes) {
    fail(path, "header would be " + std::to_string(text.size()) + " bytes, over the " +
                   std::to_string(kMaxHeaderBytes) + "-byte limit readers enforce");
  }
  return text;
}

// Bytes that can be written as they lie: dense, contiguous, on the CPU, with lazy
// conjugation and negation applied.
at::Tensor host_bytes(const at::Tensor& tensor) {
  at::Tensor t = tensor.detach();
  if (t.layout() != at::kStrided) t = t.to_dense();
  return t.to(at::kCPU).resolve_conj().resolve_neg().contiguous();
}

}  // namespace

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::vector<Entry> entries = plan(path, tensors);
  const std::string header = header_json(path, entries, metadata);
  uint8_t length[kLengthBytes];
  for (size_t i = 0; i < kLengthBytes; ++i) length[i] = uint8_t(header.size() >> (8 * i));

  io::AtomicFile file(path);
  file.write(length, sizeof length);
  file.write(header.data(), header.size());
  for (const Entry& entry : entries) {
    // One tensor at a time, so that device tensors never all sit on the host at once.
    const at::Tensor bytes = host_bytes(*entry.tensor);
    file.write(bytes.data_ptr(), entry.end - entry.begin);
  }
  file.commit();
}

}  // namespace blocks::weights
