// Generation speed of blocks::generate (what `blockc generate` runs) against Meta's Llama 3
// inference code in Python PyTorch eager (benchmarks/generate_peer.py: model.py's KV cache and
// generation.py's loop), in the same run, on the same ~125M Llama shape (hidden 768, 12 layers,
// 12 heads in 4 groups, SwiGLU 2048, vocabulary 32000, untied head), random weights, float32,
// greedy, the same thread count:
//   ./build/benchmarks/generate_bench [--steps 32] [--threads T] [--no-peer]
// Prints decode tokens/s at batch 1 and 8 (prompts of 16 tokens; from the first new token to the
// last, so prefill is not in it) and the time to first token of one 512-token prompt (prefill
// and the first choice; best of 3), for blocks::generate, for a bare loop over the same module
// (forward with the cache and argmax: what generate adds is the rest), and for the peer, with
// the ratios; the peer runs twice, as users run it and with OMP_WAIT_POLICY=PASSIVE (see
// generate.cpp's SerialAten for why that matters on a CPU).
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "benchmarks/peer.h"
#include "blocks/models/model_module.h"
#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/generate/generate.h"
#include "framework/nn/builder.h"

namespace {

const char* kModel = R"(version: 1
model:
  type: language_model
  hidden_size: 768
  embeddings: {vocab_size: 32000}
  decoder:
    type: repeat
    num_layers: 12
    block:
      type: transformer
      mixer: {type: attention, heads: 12, head_groups: 4, rotary: {type: default, theta: 500000.0}}
      mlp: {type: gated, intermediate_size: 2048}
      normalization: {type: rms_norm, epsilon: 1.0e-5}
  head: {normalization: {type: rms_norm, epsilon: 1.0e-5}, tied: false}
)";

using Clock = std::chrono::steady_clock;

struct Figures {
  double batch1 = 0, batch8 = 0, ttft = 0;
};

std::vector<std::vector<int64_t>> random_prompts(int64_t batch, int64_t length, uint64_t seed) {
  std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(batch));
  uint64_t state = seed;
  for (auto& p : prompts)
    for (int64_t i = 0; i < length; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      p.push_back(static_cast<int64_t>((state >> 33) % 32000));
    }
  return prompts;
}

// generate(): the time from the first new token to the last, and from the call to the first.
std::pair<double, double> time_generate(blocks::ModelModule& model,
                                        const std::vector<std::vector<int64_t>>& prompts,
                                        int64_t new_tokens) {
  blocks::generate::GenerateOptions options{.max_new_tokens = new_tokens,
                                            .sampling = {.greedy = true}};
  Clock::time_point first;
  bool seen = false;
  options.on_step = [&](const std::vector<int64_t>&) {
    if (!seen) first = Clock::now(), seen = true;
  };
  const auto start = Clock::now();
  blocks::generate::generate(model, prompts, options);
  const auto end = Clock::now();
  return {std::chrono::duration<double>(end - first).count(),
          std::chrono::duration<double>(first - start).count()};
}

// The bare loop: the module's forward with a cache and argmax, nothing else.
std::pair<double, double> time_bare(blocks::ModelModule& model,
                                    const std::vector<std::vector<int64_t>>& prompts,
                                    int64_t new_tokens) {
  c10::NoGradGuard no_grad;
  const auto batch = static_cast<int64_t>(prompts.size());
  std::vector<int64_t> flat;
  for (const auto& p : prompts) flat.insert(flat.end(), p.begin(), p.end());
  const auto start = Clock::now();
  blocks::DecodeCache cache =
      model.make_cache(static_cast<int64_t>(prompts[0].size()) + new_tokens);
  blocks::ModelInput input{.tokens = at::tensor(flat, at::kLong).view({batch, -1})};
  input.cache = &cache;
  input.logits_to_keep = 1;
  at::Tensor next = model.forward(input).logits.select(1, -1).argmax(-1);
  const auto first = Clock::now();
  for (int64_t s = 1; s < new_tokens; ++s) {
    blocks::ModelInput step{.tokens = next.unsqueeze(1)};
    step.cache = &cache;
    next = model.forward(step).logits.select(1, -1).argmax(-1);
  }
  next[0].item<int64_t>();  // waits for the last step
  const auto end = Clock::now();
  return {std::chrono::duration<double>(end - first).count(),
          std::chrono::duration<double>(first - start).count()};
}

template <typename Timer>
Figures measure(blocks::ModelModule& model, int64_t steps, Timer timer) {
  Figures f;
  for (int64_t batch : {1, 8}) {
    const auto prompts = random_prompts(batch, 16, static_cast<uint64_t>(batch));
    timer(model, prompts, 2);  // warm-up
    const double decode = timer(model, prompts, steps + 1).first;
    (batch == 1 ? f.batch1 : f.batch8) = static_cast<double>(batch * steps) / decode;
  }
  const auto prompt = random_prompts(1, 512, 9);
  f.ttft = 1e30;
  for (int run = 0; run < 3; ++run) f.ttft = std::min(f.ttft, timer(model, prompt, 1).second);
  return f;
}

std::string run_peer(const std::string& env, int threads, int64_t steps) {
  const std::string command = env +
                              "/usr/bin/python3 " BLOCKS_SOURCE_DIR
                              "/benchmarks/generate_peer.py "
                              "--bench --threads " +
                              std::to_string(threads) + " --steps " + std::to_string(steps);
  return bench::run_peer(command);
}

}  // namespace

int main(int argc, char** argv) {
  bench::run_as_blockc(argv);
  int64_t steps = 32;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  bool peer = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc)
      steps = std::atoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--no-peer")
      peer = false;
  }
  at::set_num_threads(threads);
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::config::load_document_text(kModel, "generate_bench.yaml", blocks::registry(),
                                                diagnostics);
  if (!doc) {
    std::fprintf(stderr, "%s", diagnostics.format().c_str());
    return 1;
  }
  blocks::Model model = blocks::build_model(*doc->model);
  blocks::nn::initialize(model.parameters, 0);
  model.module->eval();
  std::printf(
      "~125M Llama (hidden 768, 12 layers, GQA 12/4, vocab 32000), float32, %d threads, "
      "%lld decode steps\n",
      threads, static_cast<long long>(steps));
  const Figures ours = measure(*model.module, steps, time_generate);
  // The bare loop with ATen's threads off as generate() turns them off while decoding.
  at::set_num_threads(1);
  const Figures bare = measure(*model.module, steps, time_bare);
  at::set_num_threads(threads);
  auto row = [](const char* who, const Figures& f) {
    std::printf("%-22s decode b1 %7.1f tok/s   b8 %7.1f tok/s   TTFT(512) %6.3f s\n", who, f.batch1,
                f.batch8, f.ttft);
  };
  row("blocks::generate", ours);
  row("bare cached loop", bare);
  if (!peer) return 0;
  // The peer as users run it, and with libgomp's passive wait policy (what generate() gets
  // by turning ATen's threads off), the strongest form of it here.
  for (const char* env : {"env -u OMP_WAIT_POLICY ", "OMP_WAIT_POLICY=PASSIVE "}) {
    const std::string line = run_peer(env, threads, steps);
    if (line.empty()) {
      std::fprintf(stderr, "generate_peer.py failed\n");
      return 1;
    }
    const auto j = nlohmann::json::parse(line);
    const Figures theirs{j["decode_tokens_per_s_batch1"].get<double>(),
                         j["decode_tokens_per_s_batch8"].get<double>(),
                         j["ttft_512_s"].get<double>()};
    row(std::string(env).find("PASSIVE") != std::string::npos ? "llama3, passive OMP"
                                                              : "llama3 generation.py",
        theirs);
    std::printf("  blocks / this: decode b1 %.2fx, b8 %.2fx, TTFT %.2fx faster\n",
                ours.batch1 / theirs.batch1, ours.batch8 / theirs.batch8, theirs.ttft / ours.ttft);
  }
  return 0;
}
