// blockc on hostile input and faults (issue 11): outputs that are not regular files, folders
// holding an old checkpoint, concurrent writers, signals, file size limits, models larger than
// memory, broken inputs (FIFOs, masks, NaN, integer tensors, hostile indexes). Each run ends in
// one message and an exit code, and no file is lost, mixed or left behind.
#include <gmock/gmock.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "framework/weights/safetensors.h"
#include "tests/support/blockc_run.h"
#include "tests/support/devices.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kGpt2 = "--model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml";
const std::string kSmall =
    " --set model.hidden_size=64 --set model.decoder.num_layers=2 "
    "--set model.decoder.block.mixer.heads=4 "
    "--set model.decoder.block.mlp.intermediate_size=128 "
    "--set model.embeddings.vocab_size=100 "
    "--set model.embeddings.max_positions=32";

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string tokens_file(const TempDir& dir, const std::string& name = "in.safetensors") {
  const std::string path = dir.at(name);
  weights::write_safetensors(path, {{"tokens", at::arange(8, at::kLong).view({2, 4})}});
  return path;
}

at::Tensor logits_of(const std::string& path) {
  return weights::SafetensorsFile::open(path).tensor("logits");
}

// Item 3: a device node is never replaced by a regular file; the refusal comes before the work.
TEST(BlockcFaults, OutputsThatAreNotRegularFilesAreRefusedFirst) {
  TempDir dir;
  const std::string device = character_device();
  ASSERT_FALSE(device.empty()) << "no character device in /dev";
  auto r = blockc("init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml -o " + device);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "blockc: error: " + device +
                ": is a character device; outputs are regular files, refusing to replace it\n");
  struct stat st {};
  ASSERT_EQ(::stat(device.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // Item 20: forward checks its output before loading anything.
  r = blockc("forward " + kGpt2 + kSmall + " --seed 1 --input " + tokens_file(dir) +
             " --output /proc/x");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "blockc: error: /proc/x: is in a kernel interface folder; refusing to write it\n");
  // Item 4: an export folder that is a file, or under /proc.
  const std::string file = dir.write("file", "x");
  r = blockc("export " + kGpt2 + kSmall + " --seed 1 --to hf -o " + file);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "blockc: error: " + file + ": is a file; the output must be a folder\n");
  r = blockc("export " + kGpt2 + kSmall + " --seed 1 --to hf -o /proc/x");
  EXPECT_EQ(r.err, "blockc: error: /proc/x: is a kernel interface folder; refusing to write it\n");
}

// Item 20: a FIFO as input would block forever.
TEST(BlockcFaults, AFifoInputIsRefused) {
  TempDir dir;
  const std::string fifo = dir.at("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  auto r = blockc("forward " + kGpt2 + kSmall + " --seed 1 --input " + fifo + " --output " +
                  dir.at("out.safetensors"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "blockc: error: " + fifo + ": not a regular file\n");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30);
}

// Item 2: a second export into a folder holding a sharded checkpoint silently left the old
// shards and index, and forward then loaded the old weights.
TEST(BlockcFaults, ExportIntoAFolderHoldingACheckpoint) {
  TempDir dir;
  const std::string out = dir.at("hf");
  auto r = blockc("export " + kGpt2 + kSmall + " --seed 1 --to hf --max-shard-size 10KB -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sharded = entries(out);
  ASSERT_GT(sharded.size(), 3u);
  fs::copy_file(tokens_file(dir), out + "/tokenizer_stand_in.safetensors");  // not a checkpoint's
  r = blockc("export " + kGpt2 + kSmall + " --seed 2 --to hf -o " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr(out + ": the output folder is not empty (config.json, "
                                     "model-00001-of-"));
  EXPECT_THAT(r.err, HasSubstr("ask to replace its checkpoint (blockc export --replace)"));
  EXPECT_EQ(entries(out).size(), sharded.size() + 1);  // untouched

  r = blockc("export " + kGpt2 + kSmall + " --seed 2 --to hf --replace -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(entries(out), (std::vector<std::string>{"config.json", "model.safetensors",
                                                    "tokenizer_stand_in.safetensors"}));
  // forward through the folder gives seed 2's logits, not seed 1's.
  const std::string in = tokens_file(dir);
  ASSERT_EQ(blockc("forward --model " + out + " --input " + in + " --output " +
                   dir.at("folder.safetensors"))
                .code,
            0);
  ASSERT_EQ(blockc("forward " + kGpt2 + kSmall + " --seed 2 --input " + in + " --output " +
                   dir.at("seed2.safetensors"))
                .code,
            0);
  EXPECT_TRUE(at::allclose(logits_of(dir.at("folder.safetensors")),
                           logits_of(dir.at("seed2.safetensors")), 1e-5, 1e-6));
}

// Item 2: a folder holding both an index and model.safetensors loads the single file, as
// transformers does, and says so.
TEST(BlockcFaults, AFolderWithBothAnIndexAndOneFileSaysWhichItLoads) {
  TempDir dir;
  const std::string a = dir.at("a"), b = dir.at("b");
  ASSERT_EQ(
      blockc("export " + kGpt2 + kSmall + " --seed 1 --to hf --max-shard-size 10KB -o " + a).code,
      0);
  ASSERT_EQ(blockc("export " + kGpt2 + kSmall + " --seed 2 --to hf -o " + b).code, 0);
  fs::copy_file(b + "/model.safetensors", a + "/model.safetensors");
  const std::string in = tokens_file(dir);
  auto r =
      blockc("forward --model " + a + " --input " + in + " --output " + dir.at("o.safetensors"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "blockc: warning: " + a +
                       " holds both model.safetensors and model.safetensors.index.json: loading "
                       "model.safetensors, as transformers does\n");
  ASSERT_EQ(
      blockc("forward --model " + b + " --input " + in + " --output " + dir.at("b.safetensors"))
          .code,
      0);
  EXPECT_TRUE(at::equal(logits_of(dir.at("o.safetensors")), logits_of(dir.at("b.safetensors"))));
}

// Item 21: an index is data from anywhere; it must not lead outside the folder or disagree with
// its shards.
TEST(BlockcFaults, HostileIndexesAreRefused) {
  TempDir dir;
  const std::string a = dir.at("a");
  ASSERT_EQ(
      blockc("export " + kGpt2 + kSmall + " --seed 1 --to hf --max-shard-size 10KB -o " + a).code,
      0);
  const std::string index_path = a + "/model.safetensors.index.json";
  std::ifstream in(index_path);
  const std::string index((std::istreambuf_iterator<char>(in)), {});
  const std::string first = "model-00001-of-";
  const auto edited = [&](const std::string& from, const std::string& to) {
    std::string text = index;
    text.replace(text.find(from), from.size(), to);
    std::ofstream(index_path) << text;
    return blockc("forward --model " + a + " --input " + tokens_file(dir) + " --output " +
                  dir.at("o.safetensors"));
  };
  auto r = edited("\"" + first, "\"../" + first);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("which is not a file in the folder"));
  r = edited("\"" + first, "\"/etc/passwd\", \"x\": \"" + first);
  EXPECT_THAT(r.err, HasSubstr("names `/etc/passwd`, which is not a file in the folder"));
  r = edited("\"transformer.h.0.attn.c_attn.bias\"", "\"transformer.h.0.attn.c_attn.bias\": \"" +
                                                         first +
                                                         "00009.safetensors\", "
                                                         "\"transformer.h.0.attn.c_attn.bias\"");
  EXPECT_THAT(r.err, HasSubstr("weight_map lists transformer.h.0.attn.c_attn.bias more than once"));
  r = edited("\"weight_map\": {",
             "\"weight_map\": {\"phantom.weight\": \"" + first + "00001.safetensors\", ");
  EXPECT_EQ(r.code, 1);
  EXPECT_FALSE(fs::exists(dir.at("o.safetensors")));
}

// Item 4: a model larger than memory is refused before allocating; summary of absurd sizes
// allocates nothing proportional to them.
TEST(BlockcFaults, SizesBeyondTheMachineAreMessages) {
  TempDir dir;
  auto r =
      blockc("init " BLOCKS_SOURCE_DIR "/configs/llama3-70b.yaml -o " + dir.at("x.safetensors"));
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("blockc: error: the model's parameters need 282.21 GB in Float, "
                               "more than the "));
  EXPECT_TRUE(entries(dir.path()).empty());
  // A 2^32 head size used to build a 64 GB rotary table on the meta build.
  r = blockc("summary " BLOCKS_SOURCE_DIR
             "/configs/llama3-8b.yaml "
             "--set model.decoder.block.mixer.head_size=4294967296 --depth 1");
  EXPECT_EQ(r.code, 0) << r.err;
}

// Item 4: an op LibTorch lacks for a dtype is one line without a C++ backtrace; zero tokens
// through Mamba give zero logits rows.
TEST(BlockcFaults, LibTorchErrorsAndEmptySequences) {
  TempDir dir;
  auto r = blockc("forward " + kGpt2 + kSmall + " --seed 1 --dtype float16 --input " +
                  tokens_file(dir) + " --output " + dir.at("o.safetensors"));
  if (r.code != 0) {  // LibTorch 1.13 on CPU has no float16 LayerNorm; 2.x may
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("blockc: error: LibTorch: "));
    EXPECT_THAT(r.err, Not(HasSubstr("frame #")));
    EXPECT_THAT(r.err, Not(HasSubstr("Exception raised from")));
  }
  weights::write_safetensors(dir.at("empty.safetensors"),
                             {{"tokens", at::zeros({1, 0}, at::kLong)}});
  r = blockc("forward --model " BLOCKS_SOURCE_DIR
             "/configs/hybrid-mamba-attention.yaml "
             "--set model.hidden_size=64 --set model.decoder.num_layers=8 "
             "--set model.embeddings.vocab_size=100 --seed 1 --input " +
             dir.at("empty.safetensors") + " --output " + dir.at("e.safetensors"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(logits_of(dir.at("e.safetensors")).sizes(), (at::IntArrayRef{1, 0, 100}));
}

// Item 5: two inits of one output at once: the result is one run's whole file, never a mix.
TEST(BlockcFaults, ConcurrentInitsNeverMix) {
  TempDir dir;
  const std::string out = dir.at("w.safetensors");
  const std::string init =
      std::string(BLOCKC) + " init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml" + kSmall + " -o " + out;
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(
        std::system(("(" + init + " --seed 1 & " + init + " --seed 2 & wait) 2>/dev/null").c_str()),
        0);
    ASSERT_EQ(entries(dir.path()), std::vector<std::string>{"w.safetensors"});
    const auto file = weights::SafetensorsFile::open(out);
    const std::string seeds[] = {"1", "2"};
    int matches = 0;
    for (const auto& seed : seeds) {
      ASSERT_EQ(blockc("init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml" + kSmall + " --seed " + seed +
                       " -o " + dir.at("ref" + seed + ".safetensors"))
                    .code,
                0);
      const auto ref = weights::SafetensorsFile::open(dir.at("ref" + seed + ".safetensors"));
      bool all = true;
      for (const auto& info : ref.tensors())
        all = all && at::equal(ref.tensor(info.name), file.tensor(info.name));
      matches += all;
      fs::remove(dir.at("ref" + seed + ".safetensors"));
    }
    EXPECT_EQ(matches, 1) << "every tensor from exactly one of the two runs";
  }
}

// Items 6 and 7: a file size limit (as a full disk) fails the write with a message and keeps
// the old file; SIGTERM during a write removes the temporary and keeps the old file.
TEST(BlockcFaults, FailedAndInterruptedWritesKeepTheOldFile) {
  TempDir dir;
  const std::string out = dir.at("w.safetensors");
  ASSERT_EQ(blockc("init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml" + kSmall + " -o " + out).code, 0);
  const auto before = fs::file_size(out);
  // The limited run: a shell with `ulimit -f`, so that only it is limited.
  const std::string limited = "sh -c 'ulimit -f 64; exec " + std::string(BLOCKC) +
                              " export --model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml" + kSmall +
                              " --seed 5 --to hf -o " + dir.at("hf") + "' 2>" + dir.at("err");
  const int status = std::system(limited.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  std::ifstream err(dir.at("err"));
  const std::string message((std::istreambuf_iterator<char>(err)), {});
  EXPECT_THAT(message, HasSubstr(": cannot write: File too large"));
  for (const auto& name :
       fs::exists(dir.at("hf")) ? entries(dir.at("hf")) : std::vector<std::string>{})
    EXPECT_NE(fs::file_size(dir.at("hf") + "/" + name), 0u) << name << " written empty";

  // SIGTERM while the full-size gpt2 is being written.
  const pid_t child = ::fork();
  if (child == 0) {
    ::execl(BLOCKC, BLOCKC, "init", BLOCKS_SOURCE_DIR "/configs/gpt2.yaml", "-o", out.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  bool saw_temporary = false;
  for (int i = 0; i < 600 && !saw_temporary; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    saw_temporary = entries(dir.path()).size() > 3;
  }
  ::kill(child, SIGTERM);
  int child_status = 0;
  ::waitpid(child, &child_status, 0);
  EXPECT_TRUE(saw_temporary) << "the write never started";
  EXPECT_TRUE(WIFSIGNALED(child_status) && WTERMSIG(child_status) == SIGTERM);
  EXPECT_EQ(fs::file_size(out), before);
  for (const auto& name : entries(dir.path()))
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
}

// Items 16, 17 and 22: inputs that would give a silently wrong run.
TEST(BlockcFaults, BrokenValuesAreNamed) {
  TempDir dir;
  const std::string weights = dir.at("w.safetensors");
  ASSERT_EQ(blockc("init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml" + kSmall + " -o " + weights).code,
            0);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  {
    const auto file = weights::SafetensorsFile::open(weights);
    for (const auto& info : file.tensors())
      tensors.emplace_back(info.name, file.tensor(info.name).clone());
  }
  const std::string in = tokens_file(dir);
  const std::string forward = "forward " + kGpt2 + kSmall + " --input " + in + " --output " +
                              dir.at("o.safetensors") + " --weights ";
  auto with = [&](const std::string& name, const std::function<at::Tensor(at::Tensor)>& change) {
    auto copy = tensors;
    for (auto& [n, t] : copy)
      if (n == name) t = change(t);
    weights::write_safetensors(dir.at("bad.safetensors"), copy);
    return blockc(forward + dir.at("bad.safetensors"));
  };
  auto r = with("decoder.1.mlp.up.weight", [](at::Tensor t) {
    t.view(-1)[7] = std::numeric_limits<float>::quiet_NaN();
    return t;
  });
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "blockc: error: the checkpoint holds non-finite values (NaN or Inf):\n"
            "non-finite values (NaN or Inf) loaded into (1):\n  decoder.1.mlp.up.weight\n\n");
  r = with("decoder.0.mixer.query.bias", [](at::Tensor t) { return t.to(at::kLong); });
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err,
              HasSubstr("decoder.0.mixer.query.bias: checkpoint dtype I64 is not floating "
                        "point, the model's Float is (Mapping::allow_kind_change converts)"));
  for (const char* value : {"2", "-1", "0.5"}) {
    weights::write_safetensors(
        dir.at("masked.safetensors"),
        {{"tokens", at::zeros({1, 3}, at::kLong)},
         {"attention_mask", at::tensor({1.0, std::stod(value), 1.0}).view({1, 3})}});
    r = blockc("forward " + kGpt2 + kSmall + " --seed 1 --input " + dir.at("masked.safetensors") +
               " --output " + dir.at("o.safetensors"));
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, std::string("blockc: error: model: input `attention_mask` must hold only 0 "
                                 "(padding) and 1 (token), or be bool; found ") +
                         value + "\n");
  }
}

}  // namespace
}  // namespace blocks::testing
