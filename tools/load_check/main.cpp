// blocks_load_check: builds a model from a YAML config and loads a safetensors checkpoint into
// it, alone or on every rank of a torchrun-style launch, then prints one line per rank:
//
//   blocks_load_check CONFIG --weights FILE|DIR [--weights ...]... [--set PATH=VALUE]...
//                     [--hf TYPE | --map FILE] [--strategy mem_efficient|free_for_all|single]
//                     [--dtype float32|...] [--non-strict]
//
// Weights are in blocks' names, or in a Hugging Face family's (--hf llama; a folder's files
// through its index) or a mapping file's (--map).
//
//   RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 blocks_load_check ... &
//   RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 blocks_load_check ... &
//
// Output (stdout): rank=R world=W strategy=S tensors=N bytes=B hash=HEX sum=F64 load_s=T
// gbps=G rss_before_mb=M peak_rss_mb=M. `hash` is exact (FNV-1a of names and raw bytes),
// `sum` the float64 sum of every parameter. `single` loads without a process group (no env).
// Exit codes: 0 loaded, 1 load error (message on stderr), 2 usage or environment error.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <iostream>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "framework/nn/dtype.h"
#include "blocks/models/model_module.h"
#include "blocks/registry.h"
#include "framework/config/document.h"
#include "framework/weights/distributed.h"
#include "framework/weights/mapping.h"

namespace {

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux: kilobytes
}

int usage(const std::string& problem) {
  std::cerr << "blocks_load_check: " << problem << "\n"
            << "usage: blocks_load_check CONFIG --weights FILE|DIR... [--set PATH=VALUE]... "
               "[--hf TYPE | --map FILE] [--strategy mem_efficient|free_for_all|single] "
               "[--dtype float32|bfloat16|float16|float64] [--non-strict]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  namespace w = blocks::weights;
  std::string config, strategy_name = "mem_efficient", dtype_name = "float32", hf, map;
  std::vector<std::string> files, sets;
  bool strict = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--weights" || arg == "--set" || arg == "--strategy" || arg == "--dtype" ||
        arg == "--hf" || arg == "--map") {
      const char* v = value();
      if (!v) return usage(arg + " needs a value");
      if (arg == "--weights") files.push_back(v);
      if (arg == "--set") sets.push_back(v);
      if (arg == "--strategy") strategy_name = v;
      if (arg == "--dtype") dtype_name = v;
      if (arg == "--hf") hf = v;
      if (arg == "--map") map = v;
    } else if (arg == "--non-strict") {
      strict = false;
    } else if (arg == "-h" || arg == "--help") {
      usage("help");
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage("unknown option " + arg);
    } else if (config.empty()) {
      config = arg;
    } else {
      return usage("more than one CONFIG");
    }
  }
  if (config.empty()) return usage("no CONFIG");
  if (files.empty()) return usage("no --weights");
  if (!hf.empty() && !map.empty()) return usage("--hf and --map exclude each other");
  std::optional<w::Mapping> mapping;
  try {
    if (!hf.empty()) mapping = w::hf_mapping(hf);
    if (!map.empty()) mapping = w::load_mapping_file(map);
    std::vector<std::string> expanded;
    for (const auto& f : files) {
      if (!std::filesystem::is_directory(f)) {
        expanded.push_back(f);
        continue;
      }
      for (auto& shard : w::checkpoint_files(f)) expanded.push_back(std::move(shard));
    }
    files = std::move(expanded);
  } catch (const w::MappingError& e) {
    return usage(e.what());
  }
  const auto parsed = blocks::nn::dtype_from_name(dtype_name);
  if (!parsed) return usage("unknown dtype " + dtype_name);
  const at::ScalarType dtype = *parsed;

  const bool single = strategy_name == "single";
  w::LoadStrategy strategy = w::LoadStrategy::mem_efficient;
  w::ProcessGroupEnv env;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  try {
    if (!single) {
      strategy = w::parse_load_strategy(strategy_name);
      env = w::ProcessGroupEnv::from_env();
    }
  } catch (const std::exception& e) {
    return usage(e.what());
  }

  blocks::config::Diagnostics diagnostics;
  blocks::config::LoadOptions options;
  options.sets = sets;
  auto doc = blocks::config::load_document(config, blocks::registry(), diagnostics, options);
  if (!doc) {
    std::cerr << diagnostics.format();
    return 2;
  }
  try {
    if (!single) group = w::init_process_group(env);
    blocks::Model model = blocks::build_model(*doc->model, at::TensorOptions().dtype(dtype));
    std::vector<std::pair<std::string, at::Tensor>> targets;
    for (const auto& p : model.parameters) targets.emplace_back(p.name, p.tensor);
    const double rss_before = peak_rss_mb();

    if (group) group->barrier()->wait();
    const auto start = std::chrono::steady_clock::now();
    const w::Mapping* m = mapping ? &*mapping : nullptr;
    w::LoadReport report =
        !single ? w::load_distributed(targets, files, strategy, group, strict, m)
        : m     ? w::load_mapped(targets, files, *m, strict)
                : w::load_safetensors(targets, files, strict);
    if (group) group->barrier()->wait();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rss_peak = peak_rss_mb();

    int64_t bytes = 0;
    double sum = 0;
    for (const auto& [name, t] : targets) {
      bytes += static_cast<int64_t>(t.nbytes());
      sum += t.detach().to(at::kDouble).sum().item<double>();
    }
    const uint64_t hash = w::hash_tensors(targets);
    std::printf(
        "rank=%d world=%d strategy=%s tensors=%lld bytes=%lld hash=%016llx sum=%.17g "
        "load_s=%.4f gbps=%.3f rss_before_mb=%.1f peak_rss_mb=%.1f\n",
        env.rank, env.world_size, single ? "single" : w::load_strategy_name(strategy),
        static_cast<long long>(report.loaded), static_cast<long long>(bytes),
        static_cast<unsigned long long>(hash), sum, seconds, bytes / seconds / 1e9, rss_before,
        rss_peak);
    if (!report.ok()) std::fprintf(stderr, "%s", report.format().c_str());
    std::fflush(stdout);
    if (group) group->barrier()->wait();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: error: %s\n", env.rank, e.what());
    return 1;
  }
}
