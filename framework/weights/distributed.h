// Distributed loading of safetensors checkpoints over c10d, for programs launched like
// `torchrun --no-python` (the program reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
// MASTER_PORT itself).
//
//   auto env = weights::ProcessGroupEnv::from_env();          // throws ProcessGroupEnvError
//   auto group = weights::init_process_group(env);           // Gloo on CPU, TCPStore rendezvous
//   weights::load_distributed(targets, files, weights::LoadStrategy::mem_efficient, group);
//
// Strategies:
// - mem_efficient: rank 0 opens the files, validates names and shapes, and broadcasts the
//   verdict (every rank throws the same LoadError when the checkpoint does not fit); then, for
//   each target in the given order, rank 0 copies the file tensor into its target (converting
//   dtype there) and broadcasts the target's bytes (asynchronously, at most 4 tensors in
//   flight, so rank 0 reads the next tensor while earlier ones travel). Other ranks never open
//   the files and hold nothing beyond the model (plus, only for non-contiguous targets, a
//   contiguous buffer per tensor in flight).
// - free_for_all: every rank maps the files and calls load_safetensors itself.
// Either way every rank ends with the bytes a single-process load_safetensors gives.
//
// Gloo needs the gloo headers at build time (Debian: libgloo-dev); without them this file
// still compiles and init_process_group throws a clear error. NCCL (CUDA) is a documented
// branch, compiled only where the LibTorch build has it (USE_C10D_NCCL).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/intrusive_ptr.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "framework/config/error.h"
#include "framework/weights/load.h"
#include "framework/weights/mapping.h"

namespace c10d {
class ProcessGroup;
}

namespace blocks::weights {

// A missing or invalid launcher variable; the message names the variable and the value.
class ProcessGroupEnvError : public Error {
 public:
  using Error::Error;
};

// A collective load or process group that cannot go on: the failing rank's message reaches
// every rank, so none waits for a peer that gave up.
class DistributedError : public Error {
 public:
  using Error::Error;
};

struct ProcessGroupEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // defaults to rank when LOCAL_RANK is unset
  std::string master_addr;
  int master_port = 0;
  // torchrun's agent already serves a TCPStore at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank joins it as a client, under the key prefix
  // /worker/attempt_{TORCHELASTIC_RESTART_COUNT}, as torch.distributed's env:// does.
  bool agent_store = false;
  int restart_count = 0;

  // Reads the variables through `lookup` (null for unset). Throws ProcessGroupEnvError listing
  // every missing or invalid variable at once.
  static ProcessGroupEnv parse(const std::function<const char*(const char*)>& lookup);
  static ProcessGroupEnv from_env();
};

enum class LoadStrategy { mem_efficient, free_for_all };
// "mem_efficient" / "free_for_all"; throws std::invalid_argument otherwise.
LoadStrategy parse_load_strategy(const std::string& name);
const char* load_strategy_name(LoadStrategy strategy);

enum class Backend { gloo, nccl };
// Whether this build has the Gloo process group (false without the gloo headers).
bool gloo_available();

// Rendezvous through a c10d::TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 serves it, unless
// torchrun's agent does) and a
// process group of `backend`. Throws std::runtime_error when the backend is not built in.
c10::intrusive_ptr<c10d::ProcessGroup> init_process_group(
    const ProcessGroupEnv& env, Backend backend = Backend::gloo,
    std::chrono::milliseconds timeout = std::chrono::minutes(5));

// Loads `files` into `targets` on every rank of `group` (see the strategies above), by name or
// through `mapping` (foreign names, e.g. hf_mapping("llama"); under mem_efficient only rank 0
// reads the mapping's files and applies its transforms, then broadcasts each filled target).
// Strict: every rank throws the same LoadError before anything is copied. Errors rank 0 meets
// while opening files (SafetensorsError, MappingError) reach every rank as std::runtime_error
// with rank 0's text. Not strict under mem_efficient: a target rank 0 fills only in part
// (a stack with missing members) reaches the others whole, rank 0's unfilled part included.
LoadReport load_distributed(const std::vector<std::pair<std::string, at::Tensor>>& targets,
                            const std::vector<std::string>& files, LoadStrategy strategy,
                            const c10::intrusive_ptr<c10d::ProcessGroup>& group,
                            bool strict = true, const Mapping* mapping = nullptr);

// An exact 64-bit hash (FNV-1a) of the names and raw bytes of `tensors`, in order.
uint64_t hash_tensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

}  // namespace blocks::weights
