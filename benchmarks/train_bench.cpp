// Training throughput of blocks::train (what `blockc train` runs) on GPT-2 124M's shape against
// nanoGPT's loop in Python PyTorch eager (benchmarks/train_peer.py), in the same run:
//   ./build/benchmarks/train_bench [--steps 5] [--warmup 2] [--threads T] [--no-peer]
// Both: nanoGPT's model (configs/gpt2.yaml with exact GELU and no dropout, as model.py), batch
// 1 x 256 random tokens, AdamW (lr 6e-4, betas 0.9/0.95, weight decay 0.1 on >= 2-D
// parameters), clipping at 1.0, float32 on the CPU, the same thread count. Prints tokens/s of
// both and their ratio, and the step's FLOPs (blocks' count: forward x 3, nanoGPT's 6N + 12 L H
// Q T) over its time, to set against blas_check's matmul GFLOP/s. blocks runs as blockc runs it
// (OMP_WAIT_POLICY=PASSIVE, benchmarks/peer.h), nanoGPT both with and without.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/data/tokens.h"
#include "framework/io/files.h"
#include "framework/train/trainer.h"

#include "benchmarks/peer.h"

namespace {

struct Args {
  int steps = 5, warmup = 2, threads = static_cast<int>(std::thread::hardware_concurrency());
  bool peer = true;
};

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--steps") args.steps = next();
    else if (a == "--warmup") args.warmup = next();
    else if (a == "--threads") args.threads = next();
    else if (a == "--no-peer") args.peer = false;
  }
  return args;
}

// The peer's JSON line, or "" when it could not run.
std::string run_peer(const Args& args, const std::string& env) {
  const std::string command = env + "/usr/bin/python3 " BLOCKS_SOURCE_DIR
                              "/benchmarks/train_peer.py "
                              "--steps " + std::to_string(args.steps) + " --warmup " +
                              std::to_string(args.warmup) + " --threads " +
                              std::to_string(args.threads);
  return bench::run_peer(command);
}

}  // namespace

int main(int argc, char** argv) {
  bench::run_as_blockc(argv);
  const Args args = parse(argc, argv);
  at::set_num_threads(args.threads);
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("train_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::mt19937 random(0);
  std::vector<uint32_t> tokens(1 << 20);
  for (auto& t : tokens) t = random() % 50257;
  blocks::data::write_tokens((dir / "train.bin").string(), tokens,
                             blocks::data::TokenFormat::nanogpt, 2);
  const std::string run = (dir / "run.yaml").string();
  blocks::io::write_file(run, "version: 1\nextends: " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml\n"
                              "train:\n  steps: " + std::to_string(args.warmup + args.steps) +
                              "\n  data: {train: train.bin, sequence_length: 256}\n"
                              "  optimizer: {lr: 6.0e-4, beta2: 0.95, weight_decay: 0.1}\n");
  blocks::config::Diagnostics diagnostics;
  blocks::config::LoadOptions options;
  options.sets = {"model.decoder.block.mlp.activation=gelu", "model.embeddings.dropout=0",
                  "model.decoder.block.mixer.dropout=0", "model.decoder.block.dropout=0"};
  auto doc = blocks::config::load_document(run, blocks::registry(), diagnostics, options);
  if (!doc) {
    std::fprintf(stderr, "%s", diagnostics.format().c_str());
    return 1;
  }
  std::vector<double> seconds;
  blocks::train::TrainOptions train;
  train.run_dir = (dir / "run").string();
  train.on_log = [&](const blocks::config::Json& line) {
    if (line.contains("time_s")) seconds.push_back(line["time_s"].get<double>());
  };
  double flops_per_token = 0;
  {
    blocks::train::Trainer trainer(*doc, train);
    flops_per_token = trainer.flops_per_token();
    trainer.run();
  }
  fs::remove_all(dir);
  double total = 0;
  for (size_t i = static_cast<size_t>(args.warmup); i < seconds.size(); ++i) total += seconds[i];
  const double step_s = total / args.steps;
  const double tokens_per_s = 256 / step_s;
  std::printf("blocks:  %.1f tokens/s (%.3f s/step, %d threads), %.1f GFLOP/s of the step's "
              "%.1f GFLOP\n",
              tokens_per_s, step_s, args.threads, flops_per_token * 256 / step_s / 1e9,
              flops_per_token * 256 / 1e9);
  if (!args.peer) return 0;
  // nanoGPT as users run it (libgomp's default wait policy), and with the passive one blocks runs
  // with: the strongest form of it here.
  for (const char* env : {"env -u OMP_WAIT_POLICY ", "OMP_WAIT_POLICY=PASSIVE "}) {
    const std::string peer = run_peer(args, env);
    if (peer.empty()) {
      std::printf("peer:    could not run benchmarks/train_peer.py\n");
      return 0;
    }
    const auto json = blocks::config::Json::parse(peer.substr(peer.rfind('{')));
    const double peer_tokens = json["tokens_per_s"].get<double>();
    std::printf("nanoGPT%s: %.1f tokens/s (%.3f s/step), blocks / nanoGPT %.3f\n",
                std::string(env).find("PASSIVE") != std::string::npos ? " (passive OMP)" : "",
                peer_tokens, json["step_s"].get<double>(), tokens_per_s / peer_tokens);
  }
  return 0;
}
