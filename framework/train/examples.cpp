#include "framework/train/examples.h"

#include <algorithm>
#include <filesystem>

#include "framework/weights/safetensors.h"

namespace blocks::train {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& message) { throw data::DataError(message); }

std::vector<std::string> shard_paths(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    if (!fs::exists(path, ec)) fail(path + ": no such file or folder");
    return {path};
  }
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(path))
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors")
      out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  if (out.empty()) fail(path + ": the folder holds no .safetensors shards");
  return out;
}

bool is_integer(at::ScalarType t) {
  return t == at::kLong || t == at::kInt || t == at::kShort || t == at::kByte;
}

}  // namespace

ExampleShards::ExampleShards(const std::string& path, int64_t sequence_length,
                             std::vector<MediaSlot> media, int64_t vocab_size,
                             data::Sampling sampling, uint64_t seed)
    : path_(path), sequence_length_(sequence_length), slots_(std::move(media)),
      sampling_(sampling), seed_(seed) {
  const int64_t width = sequence_length + 1;
  std::vector<std::string> problems;
  for (const auto& file_path : shard_paths(path)) {
    const auto file = weights::SafetensorsFile::open(file_path);
    auto problem = [&](const std::string& text) { problems.push_back(file_path + ": " + text); };
    if (!file.contains("tokens")) {
      problem("no `tokens` tensor (integer [rows, sequence_length + 1])");
      continue;
    }
    for (const auto& info : file.tensors()) {
      if (info.name == "tokens") continue;
      const bool taken = std::any_of(slots_.begin(), slots_.end(),
                                     [&](const MediaSlot& s) { return s.input == info.name; });
      if (!taken) {
        std::string inputs;
        for (const auto& s : slots_) inputs += ", " + s.input;
        problem("`" + info.name + "` is not an input of the model (it takes tokens" + inputs + ")");
      }
    }
    Shard shard;
    shard.path = file_path;
    const at::Tensor raw = file.tensor("tokens");
    if (raw.dim() != 2 || !is_integer(raw.scalar_type()) || raw.size(1) != width) {
      std::string shape;
      for (int64_t d : raw.sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
      problem("tokens are " + std::string(c10::toString(raw.scalar_type())) + " [" + shape +
              "]; the run needs integer rows of sequence_length + 1 = " + std::to_string(width) +
              " tokens");
      continue;
    }
    shard.tokens = raw.to(at::kLong).contiguous();
    const int64_t rows = shard.tokens.size(0);
    const auto* ids = shard.tokens.data_ptr<int64_t>();
    for (int64_t i = 0; i < rows * width; ++i)
      if (ids[i] < 0 || ids[i] >= vocab_size) {
        problem("token " + std::to_string(ids[i]) + " at row " + std::to_string(i / width) +
                ", column " + std::to_string(i % width) + " is outside the vocabulary (" +
                std::to_string(vocab_size) + " ids)");
        break;
      }
    for (const auto& slot : slots_) {
      auto& first = shard.first[slot.input];
      first.assign(1, 0);
      bool bad = false;
      for (int64_t r = 0; r < rows && !bad; ++r) {
        const int64_t* row = ids + r * width;
        if (row[width - 1] == slot.placeholder) {
          problem("row " + std::to_string(r) + " ends in a placeholder of `" + slot.input +
                  "` (id " + std::to_string(slot.placeholder) + "): its run would reach past " +
                  "the inputs");
          bad = true;
          break;
        }
        int64_t count = 0;
        for (int64_t c = 0; c < width; ++c) count += row[c] == slot.placeholder;
        if (count % slot.run != 0) {
          problem("row " + std::to_string(r) + " holds " + std::to_string(count) +
                  " placeholders of `" + slot.input + "` (id " + std::to_string(slot.placeholder) +
                  "), not whole runs of " + std::to_string(slot.run));
          bad = true;
          break;
        }
        first.push_back(first.back() + count / slot.run);
      }
      if (bad) continue;
      const int64_t items = first.back();
      if (!file.contains(slot.input)) {
        if (items > 0)
          problem("the rows hold " + std::to_string(items) + " placeholder runs of `" +
                  slot.input + "` but the shard has no `" + slot.input + "` tensor");
        continue;
      }
      const at::Tensor values = file.tensor(slot.input);
      if (values.dim() < 1 || values.size(0) != items) {
        problem("the rows hold " + std::to_string(items) + " placeholder runs of `" + slot.input +
                "` but `" + slot.input + "` has " +
                (values.dim() < 1 ? std::string("no items") : std::to_string(values.size(0))) +
                " items");
        continue;
      }
      shard.media[slot.input] = values;
    }
    shard.begin = total_;
    total_ += rows;
    shards_.push_back(std::move(shard));
  }
  if (problems.empty() && total_ == 0) problems.push_back(path + ": the shards hold no rows");
  if (!problems.empty()) {
    std::string text = path + ": the examples cannot be used:";
    for (const auto& p : problems) text += "\n  " + p;
    fail(text);
  }
}

ExampleBatch ExampleShards::batch(uint64_t index, int64_t rows, int64_t row_begin,
                                  int64_t row_count) const {
  if (rows < 1 || row_begin < 0 || row_count < 1 || row_begin > rows - row_count)
    fail(path_ + ": rows [" + std::to_string(row_begin) + ", " +
         std::to_string(row_begin + row_count) + ") are not within the micro-batch's " +
         std::to_string(rows) + " rows");
  std::vector<at::Tensor> tokens;
  std::map<std::string, std::vector<at::Tensor>> items;
  for (int64_t i = 0; i < row_count; ++i) {
    const auto example = static_cast<int64_t>(data::pick_item(
        sampling_, static_cast<uint64_t>(total_), seed_, index, rows, row_begin + i));
    const auto shard = std::upper_bound(shards_.begin(), shards_.end(), example,
                                        [](int64_t e, const Shard& s) { return e < s.begin; }) -
                       1;
    const int64_t row = example - shard->begin;
    tokens.push_back(shard->tokens[row]);
    for (const auto& [input, values] : shard->media) {
      const auto& first = shard->first.at(input);
      const int64_t count = first[row + 1] - first[row];
      if (count > 0) items[input].push_back(values.narrow(0, first[row], count));
    }
  }
  const at::Tensor rows_tokens = at::stack(tokens);
  ExampleBatch out;
  out.tokens = rows_tokens.narrow(1, 0, sequence_length_).contiguous();
  at::Tensor targets = rows_tokens.narrow(1, 1, sequence_length_).clone();
  for (const auto& slot : slots_)
    targets.masked_fill_(targets.eq(slot.placeholder), kIgnoredTarget);
  out.targets = targets;
  for (auto& [input, list] : items) out.media[input] = at::cat(list, 0);
  return out;
}

}  // namespace blocks::train
