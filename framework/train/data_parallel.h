// Data parallelism over a c10d process group (the one weights::init_process_group makes): every
// rank holds the whole model and computes the gradients of its share of the batch;
// reduce_gradients() averages them over the ranks, in buckets, before each optimizer step.
//
//   auto env = weights::ProcessGroupEnv::from_env();
//   auto group = weights::init_process_group(env, weights::Backend::gloo, timeout);
//   train::DataParallel dp(group, trainable, /*bucket_bytes=*/25 << 20, timeout);
//   dp.broadcast_parameters();                          // once, before the first step
//   for (...) {                                         // each optimizer step
//     for (...) (loss(micro_batch) / micro_steps).backward();   // this rank's rows
//     dp.reduce_gradients();                            // every rank: the average gradient
//     optimizer.step();
//     log(dp.average(loss));
//   }
//
// With the loss a mean over each rank's rows (equal row counts on every rank), the averaged
// gradient is the gradient of the mean over all ranks' rows: W ranks of B rows step like one
// process of W * B rows (up to float summation order).
//
// Every collective is waited on for at most `timeout`. A rank that dies closes its connections
// and the others throw at once ("rank 0: reduce_gradients (...): a collective failed: a peer
// process may have died (LibTorch: ... Connection reset by peer)"); one that hangs or skips a
// collective makes them throw after `timeout` ("... did not complete within 60 s: a peer process
// may have died, hung or skipped it (LibTorch: Operation timed out!)"). The group is unusable
// after such an error: exit. Give init_process_group the same timeout: the Gloo group's
// destructor waits for the operation still in flight, which only the group's own timeout ends
// (measured: with 60 s there and 3 s here, a rank threw after 3 s but exited only when its peer,
// asleep for 25 s, did). With NCCL, wait() honours the timeout only under blocking wait
// (NCCL_BLOCKING_WAIT=1, TORCH_NCCL_BLOCKING_WAIT=1 in LibTorch 2.x); otherwise NCCL's watchdog
// ends the process after the group's timeout.
//
// Why no overlap with backward (DDP's gradient hooks): see data_parallel.cpp, "Overlap".
#pragma once

#include <ATen/ATen.h>
#include <c10/util/intrusive_ptr.h>
// The group is taken (and its pointer copied) by value: callers need the complete type.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <utility>
#include <vector>

#include "framework/weights/distributed.h"

namespace blocks::train {

// Every DataParallel failure; each rank throws it alike, its message opening with "rank R: ".
using weights::DistributedError;

class DataParallel {
 public:
  // `parameters`: the trainable parameters (name, tensor), in the same order on every rank, all
  // on one device (CPU for Gloo, the rank's GPU for NCCL). Gradients are grouped by dtype into
  // buckets of about `bucket_bytes` (a larger parameter is a bucket of its own). `timeout`
  // bounds every wait on a collective.
  DataParallel(c10::intrusive_ptr<c10d::ProcessGroup> group,
               std::vector<std::pair<std::string, at::Tensor>> parameters,
               int64_t bucket_bytes = int64_t{25} << 20,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ~DataParallel();
  DataParallel(DataParallel&&) noexcept;
  DataParallel& operator=(DataParallel&&) noexcept;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // How the gradients travel: "N buckets (of at most B bytes): float32 K parameters ...".
  std::string describe() const;
  size_t num_buckets() const { return buckets_.size(); }

  // Rank 0's parameter values to every rank. First every rank checks that all ranks hold the
  // same names, shapes and dtypes (else every rank throws, naming the first rank and parameter
  // that differ and both sides); after the broadcast every rank hashes its parameters
  // (weights::hash_tensors) and a rank whose hash differs from rank 0's is an error everywhere.
  void broadcast_parameters();

  // Replaces every parameter's gradient by its average over the ranks. Call once per optimizer
  // step, after the last micro-step's backward, on every rank. Every parameter needs a defined
  // gradient on every rank: otherwise every rank throws, naming the parameters and ranks (the
  // ranks agree on this first, through one small all-reduce, so none waits on a collective a
  // peer skips). Half and bfloat16 gradients are summed in float32 on CPU (Gloo).
  void reduce_gradients();

  // `value` averaged over the ranks (a loss, for logging).
  double average(double value);
  // `count` summed over the ranks (tokens seen).
  int64_t sum(int64_t count);

 private:
  struct Bucket {
    std::vector<size_t> members;   // indices into parameters_
    std::vector<int64_t> offsets;  // each member's first element in `buffer`
    int64_t numel = 0;
    at::ScalarType wire = at::kFloat;  // the buffer's dtype
    at::Tensor buffer;                 // allocated at the first reduce, then reused
  };
  void make_buckets(int64_t bucket_bytes);
  void check_signatures();
  void check_gradients();
  // Launches a collective (`launch` calls the group); `what` ("reduce_gradients (all-reduce
  // of bucket 2 of 7)") opens the message should it fail to start.
  c10::intrusive_ptr<c10d::Work> start(
      const std::string& what, const std::function<c10::intrusive_ptr<c10d::Work>()>& launch) const;
  // Waits for `work` within timeout_; LibTorch's and Gloo's errors become DistributedError.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) const;
  c10::intrusive_ptr<c10d::Work> start_all_reduce(at::Tensor& tensor, const std::string& what);
  void all_reduce(at::Tensor& tensor, const std::string& what);
  std::vector<at::Tensor> all_gather(const at::Tensor& tensor, const std::string& what);
  std::vector<int64_t> all_gather_int64(int64_t value, const std::string& what);
  // Every rank's `text`, by rank.
  std::vector<std::string> all_gather_text(const std::string& text, const std::string& what);
  [[noreturn]] void fail(const std::string& message) const;

  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  std::vector<std::pair<std::string, at::Tensor>> parameters_;
  std::chrono::milliseconds timeout_;
  int rank_ = 0;
  int world_size_ = 1;
  at::Device device_ = at::kCPU;
  std::vector<Bucket> buckets_;
};

}  // namespace blocks::train
