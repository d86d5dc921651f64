// safetensors files: bit-exact round trips of every dtype LibTorch can hold; the reference
// implementation's exact bytes; files written and read by an independent writer (Debian's
// Python with torch, by hand); a corpus of corrupted files each rejected with one precise
// error; zero-copy views that outlive the file object; writes that never leave half a file.
#include "framework/weights/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/version.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "framework/io/files.h"

namespace blocks::weights {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A fresh directory per test under GoogleTest's temp dir, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("safetensors_" + std::string(test->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

std::string le64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  return bytes;
}

// A file as the format lays it out: length, header text as given (no padding), data.
std::string raw_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The message of the one SafetensorsError `action` throws; a failure if it throws nothing or
// anything else.
std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const SafetensorsError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a SafetensorsError: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error";
  return {};
}

std::string open_error(const std::string& path) {
  return error_of([&] { SafetensorsFile::open(path); });
}

std::string bytes_of(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

// Same dtype, shape and bytes: at::equal would call NaN != NaN and -0.0 == 0.0.
void expect_same_bits(const at::Tensor& expected, const at::Tensor& actual) {
  EXPECT_EQ(expected.scalar_type(), actual.scalar_type());
  EXPECT_EQ(expected.sizes(), actual.sizes());
  EXPECT_TRUE(bytes_of(expected) == bytes_of(actual));
}

// Random bytes of every bit pattern (NaNs, infinities, subnormals, -0 included), except that
// booleans must be 0 or 1.
at::Tensor random_tensor(at::ScalarType type, at::IntArrayRef shape) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (type == at::kBool) return at::randint(0, 2, shape, at::kByte).to(at::kBool);
  const int64_t bytes = numel * static_cast<int64_t>(c10::elementSize(type));
  const at::Tensor raw = at::randint(0, 256, {bytes}, at::kByte);
  if (type == at::kComplexFloat) {
    return at::view_as_complex(raw.view(at::kFloat).reshape({numel, 2})).reshape(shape);
  }
  return raw.view(type).reshape(shape);
}

// Every dtype LibTorch and safetensors share.
const std::vector<std::pair<std::string, at::ScalarType>> kSupported = {
    {"BOOL", at::kBool},  {"U8", at::kByte},       {"I8", at::kChar},          {"I16", at::kShort},
    {"F16", at::kHalf},   {"BF16", at::kBFloat16}, {"I32", at::kInt},          {"F32", at::kFloat},
    {"F64", at::kDouble}, {"I64", at::kLong},      {"C64", at::kComplexFloat},
};

// ---------------------------------------------------------------------------------------------
// Dtype names

TEST(SafetensorsDtypes, MapBothWays) {
  for (const auto& [name, type] : kSupported) {
    EXPECT_EQ(scalar_type(name), type) << name;
    EXPECT_EQ(dtype_name(type), name) << name;
  }
}

TEST(SafetensorsDtypes, UnknownAndUnsupportedAreErrors) {
  EXPECT_EQ(error_of([] { scalar_type("F33"); }),
            "safetensors dtype unknown dtype `F33` (valid: BOOL, U8, I8, I16, F16, BF16, I32, "
            "F32, F64, I64, C64, U16, U32, U64, F8_E4M3, F8_E5M2, F8_E8M0, F6_E2M3, F6_E3M2, F4)");
  EXPECT_EQ(error_of([] { scalar_type("F4"); }),
            "safetensors dtype F4 is not supported by LibTorch (this build links " TORCH_VERSION
            ")");
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 3)
  EXPECT_THAT(error_of([] { scalar_type("U32"); }), HasSubstr("U32 is not supported by LibTorch"));
#endif
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 1)
  EXPECT_THAT(error_of([] { scalar_type("F8_E4M3"); }), HasSubstr("F8_E4M3 needs LibTorch >= 2.1"));
#endif
  EXPECT_EQ(error_of([] { dtype_name(at::kComplexDouble); }),
            "LibTorch dtype ComplexDouble has no safetensors equivalent");
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST_F(SafetensorsTest, RoundTripsEveryDtypeBitExactly) {
  const std::vector<std::vector<int64_t>> shapes = {{},        {0},       {7},
                                                    {3, 0, 2}, {2, 3, 5}, {1, 1, 1, 1}};
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  // Reverse alphabetical, so that keeping the given order is not an accident of sorting.
  for (auto it = kSupported.rbegin(); it != kSupported.rend(); ++it) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      tensors.emplace_back(it->first + "." + std::to_string(i),
                           random_tensor(it->second, shapes[i]));
    }
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "ünïcödé ✓"}};
  write_safetensors(path("all.safetensors"), tensors, metadata);

  const auto file = SafetensorsFile::open(path("all.safetensors"));
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.tensors().size(), tensors.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, expected] = tensors[i];
    SCOPED_TRACE(name);
    const TensorInfo& info = file.tensors()[i];
    EXPECT_EQ(info.name, name);
    EXPECT_EQ(info.dtype, dtype_name(expected.scalar_type()));
    EXPECT_EQ(info.shape, expected.sizes().vec());
    EXPECT_EQ(info.begin, offset);
    offset = info.end;
    EXPECT_EQ(file.find(name), &info);
    expect_same_bits(expected, file.tensor(name));
  }
  EXPECT_FALSE(file.contains("missing"));
  EXPECT_EQ(error_of([&] { file.tensor("missing"); }),
            path("all.safetensors") + ": no tensor `missing`");
}

TEST_F(SafetensorsTest, WritesDenseContiguousCopiesOfViews) {
  const at::Tensor base = at::arange(24, at::kFloat).reshape({4, 6});
  const at::Tensor transposed = base.t();
  const at::Tensor strided = base.slice(1, 0, 6, 2);
  const at::Tensor expanded = at::arange(3, at::kLong).expand({4, 3});
  const at::Tensor sparse = at::eye(3, at::kDouble).to_sparse();
  const at::Tensor grad = at::ones({2}, at::TensorOptions().requires_grad(true));
  write_safetensors(
      path("views.safetensors"),
      {{"t", transposed}, {"s", strided}, {"e", expanded}, {"sparse", sparse}, {"grad", grad}});
  const auto file = SafetensorsFile::open(path("views.safetensors"));
  EXPECT_TRUE(at::equal(file.tensor("t"), transposed));
  EXPECT_TRUE(at::equal(file.tensor("s"), strided));
  EXPECT_TRUE(at::equal(file.tensor("e"), expanded));
  EXPECT_TRUE(at::equal(file.tensor("sparse"), at::eye(3, at::kDouble)));
  EXPECT_TRUE(at::equal(file.tensor("grad"), at::ones({2})));
}

// The reference implementation's own tests (safetensors/src/tensor.rs: test_empty,
// test_serialization, test_serialization_forced_alignement) pin these exact bytes.
TEST_F(SafetensorsTest, WritesTheReferenceBytes) {
  write_safetensors(path("empty.safetensors"), {});
  EXPECT_EQ(read_bytes(path("empty.safetensors")), le64(8) + "{}      ");

  write_safetensors(path("meta.safetensors"), {}, {{"framework", "pt"}});
  EXPECT_EQ(read_bytes(path("meta.safetensors")),
            le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");

  const at::Tensor values = at::arange(6, at::kFloat);
  write_safetensors(path("attn.safetensors"), {{"attn.0", values.reshape({1, 2, 3})}});
  EXPECT_EQ(read_bytes(path("attn.safetensors")),
            le64(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
                bytes_of(values));

  write_safetensors(path("attn0.safetensors"), {{"attn0", values.reshape({1, 1, 2, 3})}});
  EXPECT_EQ(read_bytes(path("attn0.safetensors")),
            le64(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
                "       " + bytes_of(values));
}

// ---------------------------------------------------------------------------------------------
// An independent writer and reader: Debian's Python with torch, by hand (struct + json).

constexpr const char* kPython = "/usr/bin/python3";

bool python_has_torch() {
  static const bool has =
      std::system((std::string(kPython) + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) ==
      0;
  // CI sets BLOCKS_REQUIRE_REFERENCES: a missing reference is a failure there, not a skip.
  if (!has && std::getenv("BLOCKS_REQUIRE_REFERENCES"))
    ADD_FAILURE() << kPython << " cannot import torch and numpy, and BLOCKS_REQUIRE_REFERENCES is set";
  return has;
}

// Runs `script` with `argument`; returns the exit status and fills `output`.
int run_python(const std::string& script_path, const std::string& script,
               const std::string& argument, std::string& output) {
  std::ofstream(script_path) << script;
  const std::string command =
      std::string(kPython) + " '" + script_path + "' '" + argument + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  return ::pclose(pipe);
}

// Header keys sorted by name (so header order differs from offset order), no padding (so
// some tensors are unaligned and read as copies).
constexpr const char* kPythonWriter = R"(
import json, struct, sys, torch
weight = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8 - 0.75
half = (torch.arange(10, dtype=torch.float32) * 0.25 - 1).to(torch.bfloat16).reshape(2, 5)
ids = torch.arange(6, dtype=torch.int64).reshape(3, 2) * (1 << 40) - 7
mask = torch.arange(7) % 3 == 0
blobs = [("weight", "F32", weight, weight.numpy().tobytes()),
         ("half", "BF16", half, half.view(torch.int16).numpy().tobytes()),
         ("ids", "I64", ids, ids.numpy().tobytes()),
         ("mask", "BOOL", mask, mask.numpy().tobytes())]
header = {"__metadata__": {"format": "pt", "writer": "python"}}
data = b""
for name, dtype, tensor, raw in blobs:
    header[name] = {"dtype": dtype, "shape": list(tensor.shape),
                    "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(header, sort_keys=True).encode()
with open(sys.argv[1], "wb") as out:
    out.write(struct.pack("<Q", len(text)) + text + data)
)";

TEST_F(SafetensorsTest, ReadsAFileWrittenByPython) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch and numpy";
  std::string output;
  ASSERT_EQ(run_python(path("writer.py"), kPythonWriter, path("py.safetensors"), output), 0)
      << output;

  const auto file = SafetensorsFile::open(path("py.safetensors"));
  EXPECT_EQ(file.metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}, {"writer", "python"}}));
  std::vector<std::string> names;
  for (const TensorInfo& info : file.tensors()) names.push_back(info.name);
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "half", "ids", "mask"}));

  const at::Tensor weight = at::arange(12, at::kFloat).reshape({3, 4}) / 8 - 0.75;
  const at::Tensor half = (at::arange(10, at::kFloat) * 0.25 - 1).to(at::kBFloat16).reshape({2, 5});
  const at::Tensor ids = at::arange(6, at::kLong).reshape({3, 2}) * (int64_t{1} << 40) - 7;
  const at::Tensor mask = at::remainder(at::arange(7), 3).eq(0);
  expect_same_bits(weight, file.tensor("weight"));
  expect_same_bits(half, file.tensor("half"));
  expect_same_bits(ids, file.tensor("ids"));
  expect_same_bits(mask, file.tensor("mask"));
}

constexpr const char* kPythonReader = R"(
import json, struct, sys, torch
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert n % 8 == 0, n
header = json.loads(raw[8:8 + n].decode("utf-8"))
assert list(header) == ["__metadata__", "weight", "ids", "mask", "half", "none"], list(header)
assert header["__metadata__"] == {"written_by": "blocks"}, header["__metadata__"]
data = raw[8 + n:]
end = 0
def load(name, dtype, storage):
    global end
    info = header[name]
    assert info["dtype"] == dtype, info
    begin, stop = info["data_offsets"]
    assert begin == end, (name, begin, end)
    end = stop
    flat = torch.frombuffer(bytearray(data[begin:stop]), dtype=storage) if stop > begin \
        else torch.empty(0, dtype=storage)
    return flat.reshape(info["shape"])
weight = (torch.arange(12, dtype=torch.float32) / 8 - 0.75).reshape(4, 3).t()
assert torch.equal(load("weight", "F32", torch.float32), weight)
ids = torch.arange(6, dtype=torch.int64).reshape(2, 3) * (1 << 40) - 7
assert torch.equal(load("ids", "I64", torch.int64), ids)
mask = load("mask", "BOOL", torch.uint8)
assert mask.max() <= 1 and torch.equal(mask.bool(), torch.arange(7) % 3 == 0)
half = (torch.arange(10, dtype=torch.float32) * 0.25 - 1).to(torch.bfloat16)
assert torch.equal(load("half", "BF16", torch.int16).view(torch.bfloat16), half)
assert load("none", "F64", torch.float64).shape == (2, 0)
assert end == len(data), (end, len(data))
print("ok")
)";

TEST_F(SafetensorsTest, PythonReadsAFileWrittenHere) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch and numpy";
  const at::Tensor weight = (at::arange(12, at::kFloat) / 8 - 0.75).reshape({4, 3}).t();
  const at::Tensor ids = at::arange(6, at::kLong).reshape({2, 3}) * (int64_t{1} << 40) - 7;
  const at::Tensor mask = at::remainder(at::arange(7), 3).eq(0);
  const at::Tensor half = (at::arange(10, at::kFloat) * 0.25 - 1).to(at::kBFloat16);
  write_safetensors(path("cpp.safetensors"),
                    {{"weight", weight},
                     {"ids", ids},
                     {"mask", mask},
                     {"half", half},
                     {"none", at::empty({2, 0}, at::kDouble)}},
                    {{"written_by", "blocks"}});
  std::string output;
  EXPECT_EQ(run_python(path("reader.py"), kPythonReader, path("cpp.safetensors"), output), 0)
      << output;
  EXPECT_EQ(output, "ok\n");
}

// ---------------------------------------------------------------------------------------------
// Invalid files

struct Corrupt {
  std::string name;
  std::string bytes;
  std::string error;  // what follows "<path>: "
};

const std::string kTwoTensors = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})";

std::string one_tensor(const std::string& entry) { return R"({"x":)" + entry + "}"; }

std::vector<Corrupt> corpus() {
  const std::string data16(16, '\x01');
  const std::string valid = raw_file(kTwoTensors, data16);
  return {
      {"truncated", valid.substr(0, valid.size() - 6),
       "the tensors end at byte 16 of the data section, but it holds 10 bytes (truncated file)"},
      {"trailing", valid + "xy",
       "the tensors end at byte 16 of the data section, but it holds 18 bytes (trailing data)"},
      {"length_past_eof", le64(500) + "{}",
       "header length 500 runs past the end of the file (2 bytes follow the length)"},
      {"overlap",
       raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                std::string(12, '\0')),
       "tensors `a` data_offsets [0, 8] and `b` data_offsets [4, 12] overlap in bytes [4, 8)"},
      {"gap",
       raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                std::string(20, '\0')),
       "no tensor holds bytes [8, 12) of the data section, between `a` data_offsets [0, 8] and "
       "`b` data_offsets [12, 20]"},
      // `a`'s offsets are wrong, and sorting by offset puts `b` first: before, `b` was blamed
      // for a gap at the start; now the hole is named with both tensors around it, and `a`
      // as the one tensor of the hole's size.
      {"moved_first_tensor",
       raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},)"
                R"("b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})",
                std::string(24, '\0')),
       "no tensor holds bytes [0, 8) of the data section, between the start of the data section "
       "and `b` data_offsets [8, 16]; `a` data_offsets [16, 24] is that size: are its offsets "
       "wrong?"},
      // A tensor whose own offsets hold the wrong byte count is named before any tiling check,
      // even where it also overlaps the tensor after it.
      {"wrong_size_before_tiling",
       raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                std::string(16, '\0')),
       "tensor `a`: data_offsets [0, 12] hold 12 bytes, but F32 [2] needs 8"},
      {"gap_at_start",
       raw_file(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[4,12]})"),
                std::string(12, '\0')),
       "no tensor holds bytes [0, 4) of the data section, between the start of the data section "
       "and `x` data_offsets [4, 12]"},
      {"offsets_backwards",
       raw_file(one_tensor(R"({"dtype":"F32","shape":[0],"data_offsets":[8,0]})"),
                std::string(8, '\0')),
       "tensor `x`: data_offsets [8, 0] end before they begin"},
      {"wrong_dtype",
       raw_file(one_tensor(R"({"dtype":"F33","shape":[2],"data_offsets":[0,8]})"),
                std::string(8, '\0')),
       "tensor `x`: unknown dtype `F33` (valid: BOOL, U8, I8, I16, F16, BF16, I32, F32, F64, I64, "
       "C64, U16, U32, U64, F8_E4M3, F8_E5M2, F8_E8M0, F6_E2M3, F6_E3M2, F4)"},
      {"dtype_not_string",
       raw_file(one_tensor(R"({"dtype":32,"shape":[2],"data_offsets":[0,8]})"),
                std::string(8, '\0')),
       "tensor `x`: dtype 32 is not a string"},
      {"shape_bytes_mismatch",
       raw_file(one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})"),
                std::string(12, '\0')),
       "tensor `x`: data_offsets [0, 12] hold 12 bytes, but F32 [2, 2] needs 16"},
      {"shape_overflow",
       raw_file(
           one_tensor(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]})"),
           ""),
       "tensor `x`: F32 [4294967296, 4294967296] is too large to address (overflows 64 bits)"},
      {"negative_dim",
       raw_file(one_tensor(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"),
                std::string(8, '\0')),
       "tensor `x`: shape [-2] is not an array of non-negative integers"},
      {"fractional_dim",
       raw_file(one_tensor(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"),
                std::string(8, '\0')),
       "tensor `x`: shape [2.0] is not an array of non-negative integers"},
      {"three_offsets",
       raw_file(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8,8]})"),
                std::string(8, '\0')),
       "tensor `x`: data_offsets [0,8,8] are not two non-negative integers"},
      {"missing_offsets", raw_file(one_tensor(R"({"dtype":"F32","shape":[2]})"), ""),
       "tensor `x`: missing `data_offsets`"},
      {"extra_key",
       raw_file(one_tensor(R"({"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":1})"), ""),
       "tensor `x`: unexpected key `x` (expected dtype, shape, data_offsets)"},
      {"entry_not_object", raw_file(one_tensor("[1]"), ""),
       "tensor `x`: entry is a JSON array, not an object"},
      {"sub_byte_tensor",
       raw_file(one_tensor(R"({"dtype":"F4","shape":[3],"data_offsets":[0,2]})"),
                std::string(2, '\0')),
       "tensor `x`: F4 [3] is 12 bits, not a whole number of bytes"},
      {"metadata_not_strings", raw_file(R"({"__metadata__":{"epoch":3}})", ""),
       "__metadata__ `epoch` is a JSON number, not a string"},
      {"metadata_not_object", raw_file(R"({"__metadata__":["pt"]})", ""),
       "__metadata__ is a JSON array, not an object of strings"},
      {"huge_header_length", le64(1'000'000'000) + "{}",
       "header length 1000000000 exceeds the 100000000-byte limit"},
      {"invalid_json", raw_file(R"({"x": )", ""), "header is not valid JSON: "},
      {"not_an_object", raw_file("[1, 2]", ""), "header is a JSON array, not an object"},
      {"not_utf8", raw_file("{\"\xff\": 1}", ""), "header is not valid UTF-8 (at header byte 2)"},
      {"overlong_utf8", raw_file("{\"\xc0\xaf\": 1}", ""),
       "header is not valid UTF-8 (at header byte 2)"},
      {"shorter_than_8", "abc", "file is 3 bytes, too short for the 8-byte header length"},
      {"empty", "", "file is 0 bytes, too short for the 8-byte header length"},
  };
}

TEST_F(SafetensorsTest, RejectsEachCorruptFileWithOnePreciseError) {
  for (const Corrupt& bad : corpus()) {
    SCOPED_TRACE(bad.name);
    const std::string file = path(bad.name + ".safetensors");
    write_bytes(file, bad.bytes);
    const std::string message = open_error(file);
    EXPECT_THAT(message, StartsWith(file + ": " + bad.error));
  }
}

// Whatever bytes a damaged file holds, opening it and reading every tensor either works or
// throws SafetensorsError: no crash, no other exception.
TEST_F(SafetensorsTest, RandomDamageOnlyEverGivesSafetensorsErrors) {
  write_safetensors(
      path("good.safetensors"),
      {{"w", at::randn({4, 3})}, {"b", at::arange(5, at::kLong)}, {"m", at::ones({3}, at::kBool)}},
      {{"format", "pt"}});
  const std::string good = read_bytes(path("good.safetensors"));
  std::mt19937 random(1234);
  int opened = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string bytes = good;
    const int damage = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < damage; ++i) {
      const size_t at = random() % bytes.size();
      switch (random() % 3) {
        case 0:
          bytes[at] = static_cast<char>(random());
          break;
        case 1:
          bytes.erase(at, 1 + random() % 8);
          break;
        default:
          bytes.insert(at, 1, "{}[]\",:0123456789-eE.FIUB "[random() % 24]);
      }
    }
    const std::string file = path("damaged.safetensors");
    write_bytes(file, bytes);
    try {
      const auto opened_file = SafetensorsFile::open(file);
      for (const TensorInfo& info : opened_file.tensors()) opened_file.tensor(info.name);
      ++opened;
    } catch (const SafetensorsError& e) {
      ASSERT_THAT(e.what(), StartsWith(file + ": ")) << "round " << round;
    } catch (const std::exception& e) {
      FAIL() << "round " << round << ": not a SafetensorsError: " << e.what();
    }
  }
  // Damage in the data section leaves a valid file; elsewhere it almost never does.
  EXPECT_GT(opened, 0);
  EXPECT_LT(opened, 2000);
}

TEST_F(SafetensorsTest, TheExampleInTheHeaderIsTheExactMessage) {
  const std::string file = path("model.safetensors");
  write_bytes(file, raw_file(one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})"),
                             std::string(12, '\0')));
  EXPECT_EQ(open_error(file),
            file + ": tensor `x`: data_offsets [0, 12] hold 12 bytes, but F32 [2, 2] needs 16");
}

TEST_F(SafetensorsTest, RejectsMissingFilesAndDirectories) {
  EXPECT_EQ(open_error(path("missing.safetensors")),
            path("missing.safetensors") + ": cannot open: No such file or directory");
  EXPECT_EQ(open_error(dir_.string()), dir_.string() + ": not a regular file");
}

TEST_F(SafetensorsTest, AcceptsWhatTheReferenceAccepts) {
  // Entries in any order, padding, null metadata, empty tensors sharing an offset, and dtypes
  // LibTorch lacks: all valid, though the last cannot become tensors.
  const std::string header = R"({"u16":{"dtype":"U16","shape":[2],"data_offsets":[4,8]},)"
                             R"("__metadata__":null,)"
                             R"("f4":{"dtype":"F4","shape":[2,2],"data_offsets":[11,13]},)"
                             R"("f8":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[8,11]},)"
                             R"("b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("c":{"dtype":"I8","shape":[0,5],"data_offsets":[4,4]}}   )";
  const float one = 1.0f;
  std::string data(13, '\0');
  std::memcpy(data.data(), &one, 4);
  write_bytes(path("odd.safetensors"), raw_file(header, data));

  const auto file = SafetensorsFile::open(path("odd.safetensors"));
  std::vector<std::string> names;
  for (const TensorInfo& info : file.tensors()) names.push_back(info.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "u16", "f8", "f4"}));
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_TRUE(at::equal(file.tensor("a"), at::ones({1})));
  EXPECT_EQ(file.tensor("b").sizes(), (std::vector<int64_t>{0}));
  EXPECT_EQ(file.tensor("c").sizes(), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(error_of([&] { file.tensor("f4"); }),
            path("odd.safetensors") +
                ": tensor `f4`: F4 is not supported by LibTorch (this build links " TORCH_VERSION
                ")");
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 3)
  EXPECT_THAT(error_of([&] { file.tensor("u16"); }),
              HasSubstr("tensor `u16`: U16 is not supported by LibTorch"));
#endif
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 1)
  EXPECT_THAT(error_of([&] { file.tensor("f8"); }),
              HasSubstr("tensor `f8`: F8_E4M3 needs LibTorch >= 2.1"));
#endif
}

// ---------------------------------------------------------------------------------------------
// Zero copy

TEST_F(SafetensorsTest, AlignedTensorsAreViewsOfTheMappingThatOutliveTheFile) {
  const at::Tensor f64 = at::randn({5, 3}, at::kDouble);
  const at::Tensor bf16 = at::randn({7}).to(at::kBFloat16);
  const at::Tensor i8 = at::randint(-128, 128, {3}, at::kChar);
  // Widest first, as the reference writer orders them, so that every tensor stays aligned.
  write_safetensors(path("aligned.safetensors"), {{"f64", f64}, {"bf16", bf16}, {"i8", i8}});

  at::Tensor kept;
  {
    const auto file = SafetensorsFile::open(path("aligned.safetensors"));
    const at::Tensor first = file.tensor("f64");
    const at::Tensor second = file.tensor("f64");
    EXPECT_EQ(first.data_ptr(), second.data_ptr());
    EXPECT_EQ(file.tensor("bf16").data_ptr(), file.tensor("bf16").data_ptr());
    // Consecutive in the file, so consecutive in memory.
    EXPECT_EQ(static_cast<char*>(file.tensor("bf16").data_ptr()) + 14,
              file.tensor("i8").data_ptr());
    kept = second;
  }
  fs::remove(path("aligned.safetensors"));
  expect_same_bits(f64, kept);

  // The mapping is copy-on-write: writing to a view changes neither the file nor other files.
  write_safetensors(path("aligned.safetensors"), {{"f64", f64}});
  const auto file = SafetensorsFile::open(path("aligned.safetensors"));
  file.tensor("f64").add_(1);
  expect_same_bits(f64, SafetensorsFile::open(path("aligned.safetensors")).tensor("f64"));
}

TEST_F(SafetensorsTest, UnalignedTensorsAreAlignedCopies) {
  // An unpadded 63-byte header puts the data at file offset 71.
  const std::string header = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  const std::string padded = header + std::string(63 - header.size(), ' ');
  const at::Tensor values = at::tensor({1.5f, -2.0f, 3.25f});
  write_bytes(path("unaligned.safetensors"), raw_file(padded, bytes_of(values)));

  const auto file = SafetensorsFile::open(path("unaligned.safetensors"));
  const at::Tensor first = file.tensor("x");
  const at::Tensor second = file.tensor("x");
  EXPECT_NE(first.data_ptr(), second.data_ptr());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first.data_ptr()) % alignof(float), 0u);
  expect_same_bits(values, first);
}

// ---------------------------------------------------------------------------------------------
// Chunked copies, released pages, headers from memory

TEST_F(SafetensorsTest, CopyIntoConvertsChunkByChunkAndReleaseKeepsTheData) {
  // 20 MiB of F32 takes two chunks; the BF16 one is half that; the I8 one is unaligned after it.
  const at::Tensor big = at::arange(5 * 1024 * 1024, at::kFloat).reshape({5, 1024, 1024});
  const at::Tensor half = at::randn({3, 333}).to(at::kBFloat16);
  write_safetensors(path("m.safetensors"), {{"big", big}, {"half", half}});
  const auto file = SafetensorsFile::open(path("m.safetensors"));

  at::Tensor target = at::empty({5, 1024, 1024}, at::kFloat);
  file.copy_into("big", target);
  expect_same_bits(big, target);
  at::Tensor converted = at::empty({3, 333}, at::kFloat);
  file.copy_into("half", converted);
  expect_same_bits(half.to(at::kFloat), converted);
  at::Tensor as_double = at::empty({333, 3}, at::kDouble).t();  // not contiguous: whole copy
  file.copy_into("half", as_double);
  EXPECT_TRUE(at::equal(as_double, half.to(at::kDouble)));

  // Released pages read the file again.
  file.release("big");
  expect_same_bits(big, file.tensor("big"));

  EXPECT_THAT(error_of([&] { file.copy_into("nope", target); }), HasSubstr("no tensor `nope`"));
  EXPECT_THAT(error_of([&] { file.release("nope"); }), HasSubstr("no tensor `nope`"));
  at::Tensor wrong = at::empty({4}, at::kFloat);
  EXPECT_THAT(error_of([&] { file.copy_into("half", wrong); }),
              HasSubstr("BF16 [3, 333] has 999 elements, the target 4"));
}

TEST_F(SafetensorsTest, CopyIntoHandlesUnalignedAndEmptyTensors) {
  const std::string header =
      R"({"e":{"dtype":"F32","shape":[0,2],"data_offsets":[0,0]},)"
      R"("x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  const std::string padded = header + std::string(127 - header.size(), ' ');  // data at 135
  const at::Tensor values = at::tensor({1.5f, -2.0f, 3.25f});
  write_bytes(path("u.safetensors"), raw_file(padded, bytes_of(values)));
  const auto file = SafetensorsFile::open(path("u.safetensors"));
  at::Tensor target = at::empty({3}, at::kDouble);
  file.copy_into("x", target);
  EXPECT_TRUE(at::equal(target, values.to(at::kDouble)));
  at::Tensor empty = at::empty({0, 2});
  EXPECT_TRUE(file.copy_into("e", empty));  // nothing to copy, nothing non-finite
  EXPECT_EQ(empty.sizes(), (at::IntArrayRef{0, 2}));
  // An empty tensor into a target that has elements is a count mismatch, not a silent no-op.
  at::Tensor two = at::ones({2});
  EXPECT_THAT(error_of([&] { file.copy_into("e", two); }),
              HasSubstr("has 0 elements, the target 2"));
  EXPECT_TRUE(at::equal(two, at::ones({2})));
}

TEST_F(SafetensorsTest, ParseHeaderReadsFromMemoryAsOpenDoes) {
  const at::Tensor a = at::ones({2, 2}), b = at::zeros({3}, at::kLong);
  write_safetensors(path("h.safetensors"), {{"a", a}, {"b", b}});
  const std::string bytes = read_bytes(path("h.safetensors"));
  const uint64_t length = static_cast<uint8_t>(bytes[0]);  // < 256 here
  // The length and header alone are enough; the data need not be there.
  const auto tensors = SafetensorsFile::parse_header(
      std::string_view(bytes).substr(0, 8 + length), bytes.size(), "h");
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].name, "a");
  EXPECT_EQ(tensors[1].name, "b");
  EXPECT_EQ(tensors[1].dtype, "I64");
  EXPECT_EQ(tensors[1].end, 40u);
  EXPECT_THAT(error_of([&] {
                SafetensorsFile::parse_header(std::string_view(bytes).substr(0, 20),
                                              bytes.size(), "h");
              }),
              HasSubstr("h: header length " + std::to_string(length) + " runs past the 12"));
  EXPECT_THAT(error_of([&] { SafetensorsFile::parse_header("abc", 3, "h"); }),
              HasSubstr("too short for the 8-byte header length"));
  // Everything else, with the file's size, as open() says it.
  EXPECT_THAT(error_of([&] { SafetensorsFile::parse_header(bytes, bytes.size() + 4, "h"); }),
              HasSubstr("trailing data"));
}

// ---------------------------------------------------------------------------------------------
// Failed writes

TEST_F(SafetensorsTest, FailedWritesLeaveTheOldFileAndNoTemporary) {
  const std::string file = path("keep.safetensors");
  write_safetensors(file, {{"x", at::ones({2})}});
  const std::string before = read_bytes(file);

  EXPECT_EQ(error_of([&] {
              write_safetensors(file, {{"y", at::ones({1})}, {"y", at::ones({1})}});
            }),
            file + ": tensor `y`: given twice");
  EXPECT_EQ(error_of([&] {
              write_safetensors(file, {{"z", at::ones({1}, at::kComplexDouble)}});
            }),
            file + ": tensor `z`: LibTorch dtype ComplexDouble has no safetensors equivalent");
  EXPECT_EQ(error_of([&] {
              write_safetensors(file, {{"__metadata__", at::ones({1})}});
            }),
            file + ": `__metadata__` cannot name a tensor");
  EXPECT_EQ(error_of([&] {
              write_safetensors(file, {{"u", at::Tensor()}});
            }),
            file + ": tensor `u`: undefined tensor");
  EXPECT_EQ(error_of([&] {
              write_safetensors(file, {{"\xff", at::ones({1})}});
            }),
            file + ": a tensor name or metadata string is not valid UTF-8");
  EXPECT_EQ(read_bytes(file), before);
  auto only_the_file = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"keep.safetensors"});
  };
  only_the_file();

  const std::string nowhere = path("no/such/dir/x.safetensors");
  try {
    write_safetensors(nowhere, {{"x", at::ones({1})}});
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const io::FileError& e) {
    EXPECT_EQ(std::string(e.what()), nowhere + ": cannot write into " + path("no/such/dir") +
                                         ": No such file or directory");
  }

  // A successful overwrite replaces the file and leaves no temporary either.
  write_safetensors(file, {{"w", at::zeros({3})}});
  EXPECT_TRUE(at::equal(SafetensorsFile::open(file).tensor("w"), at::zeros({3})));
  only_the_file();
}

}  // namespace
}  // namespace blocks::weights
