// What building a model from YAML costs at training time: a ~125M-parameter Llama-style model
// built by blocks from a config, against the same model written by hand in plain LibTorch.
//   ./build/benchmarks/model_bench --benchmark_counters_tabular=true
//       [--device=cuda] [--batch=1] [--tokens=256] [--iterations=8] [--no-memory]
//
// The hand model is a straightforward Hugging Face-style implementation (LlamaRMSNorm,
// rotate_half rotary, repeat_kv, the same fused attention call as blocks). It gets a copy of
// the YAML model's weights, and the program aborts unless both give the same logits: a ratio of
// two different computations would say nothing. Both models are timed in the same benchmark,
// alternating which goes first, so machine drift (other builds on the box) hits both alike.
// Peak memory is each model's own: one forked child per model, so neither sees the other's
// allocations, read back with wait4's per-child rusage.
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "blocks/models/language_model_module.h"
#include "blocks/registry.h"
#include "framework/nn/torch_version.h"
#include "framework/config/document.h"

namespace {

// The model: Llama 3's shape scaled down to ~125M parameters (75M of them outside the
// embedding and output matrices).
struct Shape {
  int64_t hidden = 768, layers = 12, heads = 12, groups = 4, head_size = 64;
  int64_t intermediate = 2048, vocab = 32000;
  double epsilon = 1e-5, theta = 500000.0;
};
const Shape kShape;

struct Options {
  at::Device device = at::kCPU;
  int64_t batch = 1, tokens = 256;
  int64_t iterations = 8;  // pairs (one step of each model) per benchmark
  bool memory = true;
};
Options options;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "model_bench: %s\n", message.c_str());
  std::exit(1);
}

std::string yaml_text(const Shape& s) {
  const auto n = [](auto v) { return std::to_string(v); };
  return "version: 1\nmodel:\n  type: language_model\n  hidden_size: " + n(s.hidden) +
         "\n  add_linear_biases: false\n  embeddings: {vocab_size: " + n(s.vocab) +
         "}\n  decoder:\n    type: repeat\n    num_layers: " + n(s.layers) +
         "\n    block:\n      type: transformer\n      mixer:\n        type: attention\n"
         "        heads: " +
         n(s.heads) + "\n        head_groups: " + n(s.groups) +
         "\n        head_size: " + n(s.head_size) +
         "\n        rotary: {type: default, theta: 500000.0, layout: half}\n"
         "      mlp: {type: gated, intermediate_size: " +
         n(s.intermediate) +
         ", activation: silu}\n      normalization: {type: rms_norm, epsilon: 1.0e-5}\n"
         "  head:\n    normalization: {type: rms_norm, epsilon: 1.0e-5}\n    tied: false\n";
}

blocks::Model build_yaml_model(at::Device device) {
  blocks::config::Diagnostics diagnostics;
  auto doc = blocks::config::load_document_text(yaml_text(kShape), "model_bench.yaml",
                                                blocks::registry(), diagnostics);
  if (!doc) fail("the benchmark config does not load:\n" + diagnostics.format());
  blocks::Model model =
      blocks::build_model(*doc->model, at::TensorOptions().dtype(at::kFloat).device(device));
  blocks::nn::initialize(model.parameters, /*seed=*/0);
  return model;
}

// ---- The hand-written model (Hugging Face modeling_llama.py, transcribed) --------------------
namespace hand {

// nn.Linear without bias / nn.Embedding: one `weight` [out, in] (or [vocab, hidden]).
struct Weight : torch::nn::Module {
  Weight(int64_t rows, int64_t columns, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::empty({rows, columns}, o));
  }
  at::Tensor weight;
};

// The `weight` module `name` of `parent`, as a tensor to use directly.
at::Tensor weight(torch::nn::Module& parent, const std::string& name, int64_t rows, int64_t columns,
                  const at::TensorOptions& o) {
  return parent.register_module(name, std::make_shared<Weight>(rows, columns, o))->weight;
}

struct RmsNorm : torch::nn::Module {
  RmsNorm(int64_t width, double eps, const at::TensorOptions& o) : eps(eps) {
    weight = register_parameter("weight", at::ones({width}, o));
  }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
    return weight * (xf * at::rsqrt(variance + eps)).to(x.scalar_type());
  }
  at::Tensor weight;
  double eps;
};

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// [batch, groups, tokens, d] -> [batch, heads, tokens, d], each key/value head repeated.
at::Tensor repeat_kv(const at::Tensor& x, int64_t repeats) {
  if (repeats == 1) return x;
  const int64_t b = x.size(0), g = x.size(1), t = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, g, repeats, t, d}).reshape({b, g * repeats, t, d});
}

struct Attention : torch::nn::Module {
  Attention(const Shape& s, const at::TensorOptions& o)
      : heads(s.heads),
        groups(s.groups),
        head_size(s.head_size),
        scale(1.0 / std::sqrt(static_cast<double>(s.head_size))) {
    q_proj = weight(*this, "q_proj", heads * head_size, s.hidden, o);
    k_proj = weight(*this, "k_proj", groups * head_size, s.hidden, o);
    v_proj = weight(*this, "v_proj", groups * head_size, s.hidden, o);
    o_proj = weight(*this, "o_proj", s.hidden, heads * head_size, o);
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const int64_t b = x.size(0), t = x.size(1);
    at::Tensor q = at::linear(x, q_proj).view({b, t, heads, head_size}).transpose(1, 2);
    at::Tensor k = at::linear(x, k_proj).view({b, t, groups, head_size}).transpose(1, 2);
    at::Tensor v = at::linear(x, v_proj).view({b, t, groups, head_size}).transpose(1, 2);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    k = repeat_kv(k, heads / groups);
    v = repeat_kv(v, heads / groups);
    const at::Tensor out = blocks::nn::attention(q, k, v, {}, 0.0, /*causal=*/true, scale);
    return at::linear(out.transpose(1, 2).reshape({b, t, heads * head_size}), o_proj);
  }
  int64_t heads, groups, head_size;
  double scale;
  at::Tensor q_proj, k_proj, v_proj, o_proj;
};

struct Mlp : torch::nn::Module {
  Mlp(const Shape& s, const at::TensorOptions& o) {
    gate_proj = weight(*this, "gate_proj", s.intermediate, s.hidden, o);
    up_proj = weight(*this, "up_proj", s.intermediate, s.hidden, o);
    down_proj = weight(*this, "down_proj", s.hidden, s.intermediate, o);
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::linear(at::silu(at::linear(x, gate_proj)) * at::linear(x, up_proj), down_proj);
  }
  at::Tensor gate_proj, up_proj, down_proj;
};

struct Layer : torch::nn::Module {
  Layer(const Shape& s, const at::TensorOptions& o) {
    input_layernorm =
        register_module("input_layernorm", std::make_shared<RmsNorm>(s.hidden, s.epsilon, o));
    self_attn = register_module("self_attn", std::make_shared<Attention>(s, o));
    post_attention_layernorm = register_module("post_attention_layernorm",
                                               std::make_shared<RmsNorm>(s.hidden, s.epsilon, o));
    mlp = register_module("mlp", std::make_shared<Mlp>(s, o));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const at::Tensor h = x + self_attn->forward(input_layernorm->forward(x), cos, sin);
    return h + mlp->forward(post_attention_layernorm->forward(h));
  }
  std::shared_ptr<RmsNorm> input_layernorm, post_attention_layernorm;
  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<Mlp> mlp;
};

struct Llama : torch::nn::Module {
  Llama(const Shape& s, const at::TensorOptions& o) : shape(s) {
    embed_tokens = weight(*this, "embed_tokens", s.vocab, s.hidden, o);
    auto list = register_module("layers", std::make_shared<torch::nn::Module>());
    for (int64_t i = 0; i < s.layers; ++i)
      layers.push_back(list->register_module(std::to_string(i), std::make_shared<Layer>(s, o)));
    norm = register_module("norm", std::make_shared<RmsNorm>(s.hidden, s.epsilon, o));
    lm_head = weight(*this, "lm_head", s.vocab, s.hidden, o);
    // LlamaRotaryEmbedding: inverse frequencies in float32, cos/sin made once per forward and
    // shared by all layers.
    const auto f = o.dtype(at::kFloat);
    inv_freq = 1.0 / at::pow(s.theta, at::arange(0, s.head_size, 2, f) / double(s.head_size));
  }
  at::Tensor forward(const at::Tensor& tokens) {
    const int64_t t = tokens.size(1);
    const at::Tensor positions = at::arange(t, inv_freq.options()).unsqueeze(-1);
    const at::Tensor freqs = positions * inv_freq;  // [tokens, head_size / 2]
    const at::Tensor emb = at::cat({freqs, freqs}, -1);
    const at::Tensor cos = emb.cos().to(embed_tokens.scalar_type());
    const at::Tensor sin = emb.sin().to(embed_tokens.scalar_type());
    at::Tensor x = at::embedding(embed_tokens, tokens);
    for (const auto& layer : layers) x = layer->forward(x, cos, sin);
    return at::linear(norm->forward(x), lm_head);
  }
  // The blocks parameter each of ours copies, by name.
  std::map<std::string, std::string> blocks_names() const {
    std::map<std::string, std::string> m = {{"embed_tokens.weight", "embeddings.word.weight"},
                                            {"norm.weight", "head.normalization.weight"},
                                            {"lm_head.weight", "head.output.weight"}};
    const std::vector<std::pair<std::string, std::string>> per_layer = {
        {"input_layernorm.weight", "normalization.weight"},
        {"self_attn.q_proj.weight", "mixer.query.weight"},
        {"self_attn.k_proj.weight", "mixer.key.weight"},
        {"self_attn.v_proj.weight", "mixer.value.weight"},
        {"self_attn.o_proj.weight", "mixer.output.weight"},
        {"post_attention_layernorm.weight", "mlp_normalization.weight"},
        {"mlp.gate_proj.weight", "mlp.gate.weight"},
        {"mlp.up_proj.weight", "mlp.up.weight"},
        {"mlp.down_proj.weight", "mlp.down.weight"}};
    for (int64_t i = 0; i < shape.layers; ++i)
      for (const auto& [ours, theirs] : per_layer)
        m["layers." + std::to_string(i) + "." + ours] =
            "decoder." + std::to_string(i) + "." + theirs;
    return m;
  }

  Shape shape;
  at::Tensor embed_tokens, lm_head, inv_freq;
  std::vector<std::shared_ptr<Layer>> layers;
  std::shared_ptr<RmsNorm> norm;
};

}  // namespace hand

void copy_weights(const torch::nn::Module& from, hand::Llama& to) {
  const auto source = from.named_parameters(/*recurse=*/true);
  auto target = to.named_parameters(/*recurse=*/true);
  const auto names = to.blocks_names();
  if (names.size() != target.size() || source.size() != target.size())
    fail("parameter counts differ: blocks " + std::to_string(source.size()) + ", hand " +
         std::to_string(target.size()) + ", mapped " + std::to_string(names.size()));
  torch::NoGradGuard no_grad;
  for (auto& item : target) {
    const auto name = names.find(item.key());
    const at::Tensor* src = name == names.end() ? nullptr : source.find(name->second);
    if (!src) fail("no blocks parameter for " + item.key());
    if (src->sizes() != item.value().sizes())
      fail(item.key() + ": shape " + c10::str(item.value().sizes()) + " but " + name->second +
           " is " + c10::str(src->sizes()));
    item.value().copy_(*src);
  }
}

int64_t parameter_count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

void synchronize() {
  if (options.device.is_cuda()) torch::cuda::synchronize();
}

// Wall-clock and process CPU time (all threads) of one call. Wall time is what a user waits;
// CPU time is less disturbed by other processes taking the cores, which on a shared 2-core
// box is most of the noise.
struct Timing {
  double wall = 0, cpu = 0;
};

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

Timing timed(const std::function<void()>& work) {
  synchronize();
  const double cpu = cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  work();
  synchronize();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
          cpu_seconds() - cpu};
}

using Forward = std::function<at::Tensor(const at::Tensor&)>;

// One training step: forward, cross entropy against `targets`, backward, then the gradients
// dropped (zero_grad(set_to_none=True)) so every step starts from the same memory state.
Timing train_step(const Forward& forward, const std::vector<at::Tensor>& parameters,
                  const at::Tensor& tokens, const at::Tensor& targets) {
  return timed([&] {
    const at::Tensor logits = forward(tokens);
    const at::Tensor loss = at::nll_loss(
        logits.to(at::kFloat).log_softmax(-1).view({-1, logits.size(-1)}), targets.view(-1));
    loss.backward();
    for (const auto& p : parameters) p.mutable_grad() = at::Tensor();
  });
}

// Both models with identical weights, checked to agree, and one batch of data.
struct Pair {
  blocks::Model yaml;
  std::shared_ptr<hand::Llama> hand;
  at::Tensor tokens, targets;
  Forward yaml_forward, hand_forward;
};

Pair& pair() {
  static Pair p = [] {
    Pair p;
    const auto o = at::TensorOptions().dtype(at::kFloat).device(options.device);
    p.yaml = build_yaml_model(options.device);
    p.hand = std::make_shared<hand::Llama>(kShape, o);
    copy_weights(*p.yaml.module, *p.hand);
    const auto longs = o.dtype(at::kLong);
    at::manual_seed(1);
    p.tokens = at::randint(kShape.vocab, {options.batch, options.tokens}, longs);
    p.targets = at::randint(kShape.vocab, {options.batch, options.tokens}, longs);
    auto yaml = p.yaml.module;
    auto hand = p.hand;
    p.yaml_forward = [yaml](const at::Tensor& t) { return yaml->forward(t).logits; };
    p.hand_forward = [hand](const at::Tensor& t) { return hand->forward(t); };

    torch::NoGradGuard no_grad;
    const at::Tensor a = p.yaml_forward(p.tokens), b = p.hand_forward(p.tokens);
    const double diff = (a - b).abs().max().item<double>();
    std::printf(
        "model: %.1fM parameters (blocks), %.1fM (hand); max |logit difference| %.2e, "
        "largest |logit| %.2f; %s, %d ATen threads\n",
        parameter_count(*yaml) / 1e6, parameter_count(*hand) / 1e6, diff,
        a.abs().max().item<double>(), options.device.str().c_str(), at::get_num_threads());
    if (!(diff <= 1e-4)) fail("the two models disagree (max |logit difference| > 1e-4)");
    return p;
  }();
  return p;
}

// ---- Peak memory, one child process per model ---------------------------------------------
struct Memory {
  double after_build_mb = 0, peak_mb = 0;
};
Memory memory_yaml, memory_hand;

double current_rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

// Runs `variant` (build a model, then two training steps; it returns the RSS once built) in a
// forked child. Called before the parent runs any parallel LibTorch op: GNU OpenMP's thread
// pool does not survive fork().
Memory measure_in_child(const std::function<double()>& variant) {
  int fds[2];
  if (pipe(fds) != 0) fail("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) fail("fork failed");
  if (pid == 0) {
    close(fds[0]);
    double after_build = -1;
    try {
      after_build = variant();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "model_bench: memory child: %s\n", e.what());
    }
    if (write(fds[1], &after_build, sizeof after_build) != sizeof after_build) _exit(2);
    _exit(after_build < 0 ? 1 : 0);
  }
  close(fds[1]);
  Memory m;
  if (read(fds[0], &m.after_build_mb, sizeof m.after_build_mb) != sizeof m.after_build_mb)
    m.after_build_mb = -1;
  close(fds[0]);
  int status = 0;
  struct rusage usage {};
  // wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the max over all children.
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("the memory child failed");
  m.peak_mb = usage.ru_maxrss / 1024.0;  // KiB on Linux
  return m;
}

void measure_memory() {
  const auto o = at::TensorOptions().dtype(at::kFloat);
  auto data = [] {
    at::manual_seed(1);
    return std::pair{at::randint(kShape.vocab, {options.batch, options.tokens}, at::kLong),
                     at::randint(kShape.vocab, {options.batch, options.tokens}, at::kLong)};
  };
  // The weights' values do not matter here, so the hand model keeps its own random init.
  memory_yaml = measure_in_child([&] {
    blocks::Model model = build_yaml_model(at::kCPU);
    const double built = current_rss_mb();
    auto [tokens, targets] = data();
    auto f = [&](const at::Tensor& t) { return model.module->forward(t).logits; };
    const auto params = model.module->parameters();
    for (int i = 0; i < 2; ++i) train_step(f, params, tokens, targets);
    return built;
  });
  memory_hand = measure_in_child([&] {
    auto model = std::make_shared<hand::Llama>(kShape, o);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.normal_(0.0, 0.02);
    }
    const double built = current_rss_mb();
    auto [tokens, targets] = data();
    auto f = [&](const at::Tensor& t) { return model->forward(t); };
    const auto params = model->parameters();
    for (int i = 0; i < 2; ++i) train_step(f, params, tokens, targets);
    return built;
  });
  std::printf(
      "RSS with the model built: yaml %.0f MiB, hand %.0f MiB\n"
      "peak RSS of training steps (own process each, batch %ld x %ld tokens): "
      "yaml %.0f MiB, hand %.0f MiB, ratio %.3f\n",
      memory_yaml.after_build_mb, memory_hand.after_build_mb, static_cast<long>(options.batch),
      static_cast<long>(options.tokens), memory_yaml.peak_mb, memory_hand.peak_mb,
      memory_yaml.peak_mb / memory_hand.peak_mb);
}

// ---- Benchmarks -----------------------------------------------------------------------------
double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Summary {
  std::string name;
  double yaml_ms = 0, hand_ms = 0, yaml_cpu_ms = 0, hand_cpu_ms = 0;
};
std::vector<Summary> summaries;

using Step = std::function<Timing(const Forward&, const std::vector<at::Tensor>&)>;

// Times both models each iteration, alternating which goes first; the benchmark's own time is
// their sum, the counters are what matters.
void paired(benchmark::State& state, const std::string& name, const Step& step) {
  Pair& p = pair();
  const auto yaml_params = p.yaml.module->parameters();
  const auto hand_params = p.hand->parameters();
  step(p.yaml_forward, yaml_params);  // warm-up: allocator, thread pool, first-call paths
  step(p.hand_forward, hand_params);
  std::vector<double> yaml, hand, yaml_cpu, hand_cpu;
  auto run = [&](bool is_yaml) {
    const Timing t =
        is_yaml ? step(p.yaml_forward, yaml_params) : step(p.hand_forward, hand_params);
    (is_yaml ? yaml : hand).push_back(t.wall);
    (is_yaml ? yaml_cpu : hand_cpu).push_back(t.cpu);
  };
  bool yaml_first = true;
  for (auto _ : state) {
    run(yaml_first);
    run(!yaml_first);
    yaml_first = !yaml_first;
  }
  state.counters["yaml_ms"] = 1e3 * mean(yaml);
  state.counters["hand_ms"] = 1e3 * mean(hand);
  state.counters["ratio_mean"] = mean(yaml) / mean(hand);
  state.counters["ratio_median"] = median(yaml) / median(hand);
  state.counters["ratio_min"] =
      *std::min_element(yaml.begin(), yaml.end()) / *std::min_element(hand.begin(), hand.end());
  state.counters["ratio_cpu"] = mean(yaml_cpu) / mean(hand_cpu);
  state.counters["tokens"] = static_cast<double>(p.tokens.numel());
  if (memory_yaml.peak_mb > 0) {
    state.counters["peak_yaml_MiB"] = memory_yaml.peak_mb;
    state.counters["peak_hand_MiB"] = memory_hand.peak_mb;
    state.counters["peak_ratio"] = memory_yaml.peak_mb / memory_hand.peak_mb;
  }
  summaries.push_back(
      {name, 1e3 * mean(yaml), 1e3 * mean(hand), 1e3 * mean(yaml_cpu), 1e3 * mean(hand_cpu)});
}

void BM_TrainStep(benchmark::State& state) {
  paired(state, "train step", [](const Forward& forward, const std::vector<at::Tensor>& params) {
    return train_step(forward, params, pair().tokens, pair().targets);
  });
}

// Forward alone, without autograd: isolates the module code from the backward pass.
void BM_Forward(benchmark::State& state) {
  paired(state, "forward (no grad)", [](const Forward& forward, const std::vector<at::Tensor>&) {
    torch::NoGradGuard no_grad;
    return timed([&] { benchmark::DoNotOptimize(forward(pair().tokens)); });
  });
}

// Reads and removes this program's own flags, leaving Google Benchmark's.
void parse_flags(int& argc, char** argv) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      const size_t n = std::strlen(flag);
      return arg.compare(0, n, flag) == 0 ? argv[i] + n : nullptr;
    };
    if (const char* v = value("--device=")) {
      options.device = at::Device(v);
    } else if (const char* v = value("--batch=")) {
      options.batch = std::atol(v);
    } else if (const char* v = value("--tokens=")) {
      options.tokens = std::atol(v);
    } else if (const char* v = value("--iterations=")) {
      options.iterations = std::atol(v);
    } else if (arg == "--no-memory") {
      options.memory = false;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
}

}  // namespace

int main(int argc, char** argv) {
  parse_flags(argc, argv);
  // Forking needs a process without CUDA or OpenMP threads yet, so memory is measured first,
  // and on CPU only (RSS says nothing about GPU memory).
  if (options.memory && options.device.is_cpu()) measure_memory();
  if (options.device.is_cuda() && !torch::cuda::is_available()) fail("CUDA is not available");
  for (auto* b : {benchmark::RegisterBenchmark("BM_TrainStep", BM_TrainStep),
                  benchmark::RegisterBenchmark("BM_Forward", BM_Forward)})
    b->Unit(benchmark::kMillisecond)->Iterations(options.iterations)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (const auto& s : summaries)
    std::printf("%s: yaml %.1f ms, hand %.1f ms, ratio yaml/hand %.3f (CPU time %.3f)\n",
                s.name.c_str(), s.yaml_ms, s.hand_ms, s.yaml_ms / s.hand_ms,
                s.yaml_cpu_ms / s.hand_cpu_ms);
  return 0;
}
