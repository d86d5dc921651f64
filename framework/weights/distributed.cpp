#include "framework/weights/distributed.h"

#include <c10/core/GradMode.h>

#if __has_include(<gloo/context.h>)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#define BLOCKS_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "framework/weights/load.h"
#include "framework/weights/mapping.h"
#include "framework/weights/safetensors.h"

namespace blocks::weights {

namespace {

bool parse_int(const char* text, long min, long max, int& out) {
  if (!text || !*text) return false;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno || *end || value < min || value > max) return false;
  out = static_cast<int>(value);
  return true;
}

void broadcast(const c10::intrusive_ptr<c10d::ProcessGroup>& group, at::Tensor tensor) {
  std::vector<at::Tensor> tensors{std::move(tensor)};
  c10d::BroadcastOptions options;
  options.rootRank = 0;
  group->broadcast(tensors, options)->wait();
}

// The raw bytes of a contiguous tensor as a uint8 tensor sharing its memory.
at::Tensor bytes_of(const at::Tensor& t) {
  return at::from_blob(t.data_ptr(), {static_cast<int64_t>(t.nbytes())},
                       t.options().dtype(at::kByte));
}

// Sends rank 0's `text` to every rank; returns it everywhere.
std::string broadcast_text(const c10::intrusive_ptr<c10d::ProcessGroup>& group,
                           const std::string& text) {
  at::Tensor size = at::tensor({static_cast<int64_t>(text.size())}, at::kLong);
  broadcast(group, size);
  at::Tensor data = at::empty({size.item<int64_t>()}, at::kByte);
  if (group->getRank() == 0 && !text.empty())
    std::memcpy(data.data_ptr(), text.data(), text.size());
  broadcast(group, data);
  return std::string(reinterpret_cast<const char*>(data.data_ptr()), data.numel());
}

// Rank 0's verdict, as text: "ok\n" or "load\n" or "error\n<message>", then report lines
// ("m\tNAME", "u\tNAME", "x\tTEXT"), "n\tCOUNT" (checkpoint tensors rank 0 will copy) and one
// line "k\t0101..." (which targets rank 0 fills and broadcasts).
struct Verdict {
  std::string status = "ok";
  std::string message;
  LoadReport report;
  std::string mask;

  std::string encode() const {
    std::string out = status + "\n";
    if (status == "error") return out + message;
    for (const auto& n : report.missing) out += "m\t" + n + "\n";
    for (const auto& n : report.unexpected) out += "u\t" + n + "\n";
    for (const auto& n : report.mismatched) out += "x\t" + n + "\n";
    out += "n\t" + std::to_string(report.loaded) + "\n";
    return out + "k\t" + mask + "\n";
  }
  static Verdict decode(const std::string& text) {
    Verdict v;
    const size_t eol = text.find('\n');
    v.status = text.substr(0, eol);
    if (v.status == "error") {
      v.message = text.substr(eol + 1);
      return v;
    }
    std::istringstream in(text.substr(eol + 1));
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() < 2) continue;
      const std::string value = line.substr(2);
      switch (line[0]) {
        case 'm': v.report.missing.push_back(value); break;
        case 'u': v.report.unexpected.push_back(value); break;
        case 'x': v.report.mismatched.push_back(value); break;
        case 'k': v.mask = value; break;
        case 'n': v.report.loaded = std::stoll(value); break;
      }
    }
    return v;
  }
};

LoadReport load_mem_efficient(const std::vector<std::pair<std::string, at::Tensor>>& targets,
                              const std::vector<std::string>& files, const Mapping* mapping,
                              const c10::intrusive_ptr<c10d::ProcessGroup>& group, bool strict) {
  const bool root = group->getRank() == 0;
  std::optional<MappedLoad> plan;
  Verdict verdict;
  if (root) {
    try {
      plan.emplace(targets, files, mapping ? *mapping : identity_mapping());
      verdict.report = plan->report();
      verdict.mask.assign(targets.size(), '0');
      for (size_t i = 0; i < targets.size(); ++i) {
        const size_t n = plan->pieces(i);
        if (n > 0) verdict.mask[i] = '1';
        verdict.report.loaded += static_cast<int64_t>(n);
      }
      if (strict && !verdict.report.ok()) verdict.status = "load";
    } catch (const std::exception& e) {
      verdict.status = "error";
      verdict.message = e.what();
    }
  }
  verdict = Verdict::decode(broadcast_text(group, verdict.encode()));
  if (verdict.status == "error") throw DistributedError(verdict.message);
  if (verdict.status == "load")
    throw LoadError(std::string("the checkpoint does not fit the model") +
                        (mapping && !mapping->name.empty() ? " (mapping " + mapping->name + ")"
                                                           : "") +
                        ":\n" + verdict.report.format(),
                    verdict.report);
  if (verdict.mask.size() != targets.size())
    throw DistributedError("load_distributed: rank 0 has " + std::to_string(verdict.mask.size()) +
                             " targets, rank " + std::to_string(group->getRank()) + " has " +
                             std::to_string(targets.size()));

  // Broadcasts run asynchronously (Gloo's worker threads), at most kWindow in flight, so rank 0
  // reads the next tensor while the previous ones travel. Non-contiguous targets go through a
  // contiguous buffer that lives until its broadcast is done.
  constexpr size_t kWindow = 4;
  struct InFlight {
    c10::intrusive_ptr<c10d::Work> work;
    at::Tensor target, buffer;
    std::vector<at::Tensor> tensors;
  };
  std::deque<InFlight> in_flight;
  auto finish = [&](InFlight& f) {
    f.work->wait();
    if (!root && f.buffer.defined()) f.target.copy_(f.buffer);
  };
  c10::NoGradGuard no_grad;
  const LoadReport report = verdict.report;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (verdict.mask[i] != '1') continue;
    InFlight f;
    f.target = targets[i].second;
    // Chunked, with the file's pages released after each chunk: rank 0 holds the model and
    // not the file as well.
    if (root) plan->fill(i);
    if (!f.target.is_contiguous()) f.buffer = f.target.contiguous();
    f.tensors = {bytes_of(f.buffer.defined() ? f.buffer : f.target)};
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    f.work = group->broadcast(f.tensors, options);
    in_flight.push_back(std::move(f));
    if (in_flight.size() >= kWindow) {
      finish(in_flight.front());
      in_flight.pop_front();
    }
  }
  for (auto& f : in_flight) finish(f);
  return report;
}

}  // namespace

ProcessGroupEnv ProcessGroupEnv::parse(const std::function<const char*(const char*)>& lookup) {
  ProcessGroupEnv env;
  std::vector<std::string> problems;
  auto integer = [&](const char* name, long min, long max, int& out, bool required) {
    const char* value = lookup(name);
    if (!value) {
      if (required) problems.push_back(std::string(name) + " is not set");
      return false;
    }
    if (!parse_int(value, min, max, out)) {
      problems.push_back(std::string(name) + "='" + value + "' is not an integer in [" +
                         std::to_string(min) + ", " + std::to_string(max) + "]");
      return false;
    }
    return true;
  };
  const bool have_world = integer("WORLD_SIZE", 1, 1 << 20, env.world_size, true);
  const bool have_rank = integer("RANK", 0, 1 << 20, env.rank, true);
  if (!integer("LOCAL_RANK", 0, 1 << 20, env.local_rank, false)) env.local_rank = env.rank;
  if (have_world && have_rank && env.rank >= env.world_size)
    problems.push_back("RANK=" + std::to_string(env.rank) + " is not below WORLD_SIZE=" +
                       std::to_string(env.world_size));
  const char* addr = lookup("MASTER_ADDR");
  if (!addr || !*addr)
    problems.push_back("MASTER_ADDR is not set");
  else
    env.master_addr = addr;
  integer("MASTER_PORT", 1, 65535, env.master_port, true);
  if (const char* agent = lookup("TORCHELASTIC_USE_AGENT_STORE")) {
    env.agent_store = std::string(agent) == "True";
    if (env.agent_store) integer("TORCHELASTIC_RESTART_COUNT", 0, 1 << 20, env.restart_count, true);
  }
  if (!problems.empty()) {
    std::string message = "the launcher environment (as torchrun sets it) is incomplete:";
    for (const auto& p : problems) message += "\n  " + p;
    throw ProcessGroupEnvError(message);
  }
  return env;
}

ProcessGroupEnv ProcessGroupEnv::from_env() {
  return parse([](const char* name) { return std::getenv(name); });
}

LoadStrategy parse_load_strategy(const std::string& name) {
  if (name == "mem_efficient") return LoadStrategy::mem_efficient;
  if (name == "free_for_all") return LoadStrategy::free_for_all;
  throw DistributedError("unknown load strategy '" + name + "' (mem_efficient, free_for_all)");
}

const char* load_strategy_name(LoadStrategy strategy) {
  return strategy == LoadStrategy::mem_efficient ? "mem_efficient" : "free_for_all";
}

bool gloo_available() {
#ifdef BLOCKS_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

c10::intrusive_ptr<c10d::ProcessGroup> init_process_group(const ProcessGroupEnv& env,
                                                          Backend backend,
                                                          std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(env.master_port);
  options.isServer = env.rank == 0 && !env.agent_store;
  options.numWorkers = static_cast<size_t>(env.world_size);
  options.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store =
      c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  if (env.agent_store)
    store = c10::make_intrusive<c10d::PrefixStore>(
        "/worker/attempt_" + std::to_string(env.restart_count), store);
  if (backend == Backend::gloo) {
#ifdef BLOCKS_HAVE_GLOO
    auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
    const bool loopback = env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0;
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (loopback)
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, gloo);
#else
    throw DistributedError(
        "init_process_group: blocks was built without the gloo headers (Debian: libgloo-dev), "
        "so the Gloo process group is unavailable");
#endif
  }
#ifdef USE_C10D_NCCL
  auto nccl = c10d::ProcessGroupNCCL::Options::create();
  nccl->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, nccl);
#else
  throw DistributedError("init_process_group: this LibTorch build has no NCCL");
#endif
}

LoadReport load_distributed(const std::vector<std::pair<std::string, at::Tensor>>& targets,
                            const std::vector<std::string>& files, LoadStrategy strategy,
                            const c10::intrusive_ptr<c10d::ProcessGroup>& group, bool strict,
                            const Mapping* mapping) {
  if (strategy == LoadStrategy::free_for_all)
    return load_mapped(targets, files, mapping ? *mapping : identity_mapping(), strict);
  return load_mem_efficient(targets, files, mapping, group, strict);
}

uint64_t hash_tensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const unsigned char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ull;
    }
  };
  for (const auto& [name, tensor] : tensors) {
    mix(reinterpret_cast<const unsigned char*>(name.data()), name.size());
    const at::Tensor t = tensor.detach().cpu().contiguous();
    mix(static_cast<const unsigned char*>(t.data_ptr()), t.nbytes());
  }
  return h;
}

}  // namespace blocks::weights
