// safetensors files (Hugging Face's format: 8-byte little-endian header length, a JSON header
// of {name: {dtype, shape, data_offsets}} plus optional "__metadata__", then the data).
// Reading maps the file and validates the header as the reference implementation does; tensors
// are zero-copy views of the mapping where dtype and alignment allow.
//
//   auto file = weights::SafetensorsFile::open("model.safetensors");
//   at::Tensor w = file.tensor("embeddings.word.weight");
//   weights::write_safetensors("out.safetensors", {{"x", x}}, {{"format", "pt"}});
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/config/error.h"

namespace blocks::weights {

// A file that is not valid safetensors, or cannot be read or written; the message names the
// file and what is wrong ("model.safetensors: tensor `x`: data_offsets [0, 12] hold 12 bytes,
// but F32 [2, 2] needs 16").
class SafetensorsError : public Error {
 public:
  using Error::Error;
};

struct TensorInfo {
  std::string name;
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws SafetensorsError.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensors in file order (by data offset).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  // The tensor `name` on CPU: a view of the mapping (kept alive by the tensor) when aligned,
  // else a copy. Throws SafetensorsError for unknown names and dtypes LibTorch lacks.
  // The mapping is private copy-on-write: writing to a view never changes the file, but views
  // of one tensor share memory, so an in-place op shows in every later tensor(name).
  at::Tensor tensor(const std::string& name) const;
  // Copies the tensor `name` into `target` (same number of elements; any dtype, device and
  // layout; converted on the fly) in chunks of a few MiB, giving each chunk's mapped pages
  // back to the kernel once copied, so that a load never holds more than the target plus one
  // chunk of the file: converting BF16 to F32 makes no second full copy. Throws
  // SafetensorsError for unknown names, dtypes LibTorch lacks and element count mismatches.
  // Like release(), it discards in-place changes made through views of `name`. Returns whether
  // every value copied into a floating-point target is finite, checked chunk by chunk while
  // the chunk is still in cache.
  bool copy_into(const std::string& name, const at::Tensor& target) const;
  // Gives the mapped pages wholly inside the tensor `name`'s bytes back to the kernel: they
  // stop counting toward this process's memory, and a later read maps them from the file again.
  // In-place changes made through zero-copy views of `name` are lost (views read the file's
  // bytes again), so call it only when no such view is in use.
  void release(const std::string& name) const;

  // Parses and validates the header of a file whose first bytes are `bytes` (at least the
  // length and header; the data need not be there) and whose size is `file_size`: the
  // tensors in file order. Throws SafetensorsError naming `path`. open() uses it; so does
  // the fuzzer.
  static std::vector<TensorInfo> parse_header(std::string_view bytes, uint64_t file_size,
                                              const std::string& path);

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// The LibTorch dtype of a safetensors dtype string, or throws SafetensorsError.
at::ScalarType scalar_type(const std::string& dtype);
// The safetensors dtype string of a LibTorch dtype, or throws SafetensorsError.
std::string dtype_name(at::ScalarType type);

// Writes `tensors` (any device, dtype and layout; written contiguous, in the given order) with
// `metadata` as "__metadata__". Throws SafetensorsError (duplicate names, I/O errors).
// The data section starts 8-aligned and tensors follow each other unpadded, so list wider
// dtypes first (as the reference writer does) for every tensor to be read back zero-copy.
// The file appears complete or not at all: it is written to `path + ".tmp"`, then renamed.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace blocks::weights
