// Data parallelism over c10d: a bucketed gradient all-reduce written here rather than
// c10d::Reducer (DDP's), whose header includes a file Debian's LibTorch leaves out; the same code
// builds on LibTorch 1.13 and 2.x, over Gloo (CPU) or NCCL (CUDA, where the build has it).
//
// Overlap. DDP launches a bucket's all-reduce from autograd hooks as soon as the bucket's last
// gradient is ready, so communication runs under the rest of backward. It is not done here:
// - It would gain little where blocks trains today: on CPU, backward already keeps every core
//   busy and Gloo's reduction competes for the same cores (2 ranks on this 2-core machine: one
//   core each), so hiding communication behind compute needs spare cores or a NIC/GPU copy
//   engine (NCCL), which the tests here cannot measure.
// - Correctness needs more than hooks: every rank must launch the buckets in the same order
//   (c10d matches collectives by call order), so a ready bucket waits for its predecessors; a
//   parameter that gets no gradient on one rank would leave that rank's bucket unlaunched while
//   its peers wait in an all-reduce (DDP's find_unused_parameters problem), so the
//   missing-gradient check below would have to travel inside every bucket; and LibTorch's
//   tensor hooks see each micro-step's incoming gradient, not the accumulated one (1.13 has no
//   post-accumulate hook), so the hook must add .grad itself on the last micro-step only.
// The buckets already overlap with each other: every bucket is packed and launched before the
// first is waited on, and a bucket is unpacked while later ones travel (Gloo runs two at once).
#include "framework/train/data_parallel.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

#include "framework/nn/dtype.h"
#include "framework/weights/load.h"

namespace blocks::train {

namespace {

std::string seconds_text(std::chrono::milliseconds t) {
  std::ostringstream out;
  out << static_cast<double>(t.count()) / 1000.0 << " s";
  return out.str();
}

std::string dtype_text(at::ScalarType type) {
  const auto name = nn::dtype_to_name(type);
  return name ? *name : std::string(c10::toString(type));
}

// "decoder.0.mlp.up.weight [256, 64] float32": what ranks compare before broadcasting.
std::string signature_line(const std::string& name, const at::Tensor& tensor) {
  return name + " " + weights::shape_text(tensor.sizes().vec()) + " " +
         dtype_text(tensor.scalar_type());
}

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Gloo (CPU) in LibTorch 1.13 cannot sum bfloat16, and a float32 sum of 16-bit values is exact
// for a few ranks: half and bfloat16 gradients travel as float32 on CPU. NCCL sums them natively,
// at half the bytes (as DDP does).
at::ScalarType wire_dtype(at::ScalarType type, const at::Device& device) {
  if (device.is_cpu() && (type == at::kHalf || type == at::kBFloat16)) return at::kFloat;
  return type;
}

// "rank 1", "ranks 0, 2", "every rank", or "3 of 128 ranks" (bit masks cover ranks below 62).
std::string ranks_text(int64_t count, int64_t mask, int world_size) {
  if (count == world_size) return "every rank";
  if (world_size > 62)
    return std::to_string(count) + " of " + std::to_string(world_size) + " ranks";
  std::string list;
  for (int r = 0; r < world_size; ++r)
    if (mask & (int64_t{1} << r)) list += (list.empty() ? "" : ", ") + std::to_string(r);
  return (count == 1 ? "rank " : "ranks ") + list;
}

// The raw bytes of a contiguous tensor, as a uint8 tensor sharing its memory.
at::Tensor bytes_of(const at::Tensor& t) {
  return at::from_blob(t.data_ptr(), {static_cast<int64_t>(t.nbytes())},
                       t.options().dtype(at::kByte));
}

std::string error_text(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

}  // namespace

DataParallel::DataParallel(c10::intrusive_ptr<c10d::ProcessGroup> group,
                           std::vector<std::pair<std::string, at::Tensor>> parameters,
                           int64_t bucket_bytes, std::chrono::milliseconds timeout)
    : group_(std::move(group)), parameters_(std::move(parameters)), timeout_(timeout) {
  if (!group_) throw DistributedError("DataParallel: the process group is null");
  rank_ = group_->getRank();
  world_size_ = group_->getSize();
  if (bucket_bytes <= 0)
    fail("DataParallel: bucket_bytes must be positive, got " + std::to_string(bucket_bytes));
  if (!parameters_.empty()) device_ = parameters_.front().second.device();
  for (const auto& [name, tensor] : parameters_) {
    if (!tensor.defined()) fail("DataParallel: parameter " + name + " is an undefined tensor");
    if (tensor.device() != device_)
      fail("DataParallel: parameter " + name + " is on " + tensor.device().str() + ", " +
           parameters_.front().first + " on " + device_.str() +
           ": every parameter must be on one device");
  }
  make_buckets(bucket_bytes);
}

DataParallel::~DataParallel() = default;
DataParallel::DataParallel(DataParallel&&) noexcept = default;
DataParallel& DataParallel::operator=(DataParallel&&) noexcept = default;

// Parameters grouped by dtype (in order of first appearance), each group cut in parameter order
// into buckets of at most bucket_bytes on the wire, or one parameter when it alone is larger.
void DataParallel::make_buckets(int64_t bucket_bytes) {
  std::vector<at::ScalarType> dtypes;
  for (const auto& [name, tensor] : parameters_)
    if (std::find(dtypes.begin(), dtypes.end(), tensor.scalar_type()) == dtypes.end())
      dtypes.push_back(tensor.scalar_type());
  for (const at::ScalarType dtype : dtypes) {
    const at::ScalarType wire = wire_dtype(dtype, device_);
    const int64_t element = static_cast<int64_t>(c10::elementSize(wire));
    Bucket current;
    current.wire = wire;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const at::Tensor& t = parameters_[i].second;
      if (t.scalar_type() != dtype) continue;
      if (current.numel > 0 && (current.numel + t.numel()) * element > bucket_bytes) {
        buckets_.push_back(std::move(current));
        current = Bucket();
        current.wire = wire;
      }
      current.members.push_back(i);
      current.offsets.push_back(current.numel);
      current.numel += t.numel();
    }
    if (!current.members.empty()) buckets_.push_back(std::move(current));
  }
}

std::string DataParallel::describe() const {
  std::ostringstream out;
  out << world_size_ << (world_size_ == 1 ? " rank" : " ranks") << ", " << parameters_.size()
      << " parameters in " << buckets_.size() << (buckets_.size() == 1 ? " bucket" : " buckets");
  for (const Bucket& b : buckets_) {
    out << (&b == &buckets_.front() ? ": " : ", ") << b.members.size() << " "
        << dtype_text(parameters_[b.members.front()].second.scalar_type());
    if (b.wire != parameters_[b.members.front()].second.scalar_type())
      out << " (as " << dtype_text(b.wire) << ")";
    out << " of " << b.numel * static_cast<int64_t>(c10::elementSize(b.wire)) << " bytes";
  }
  return out.str();
}

void DataParallel::fail(const std::string& message) const {
  throw DistributedError("rank " + std::to_string(rank_) + ": " + message);
}

c10::intrusive_ptr<c10d::Work> DataParallel::start(
    const std::string& what, const std::function<c10::intrusive_ptr<c10d::Work>()>& launch) const {
  try {
    return launch();
  } catch (const std::exception& e) {
    fail(what + ": the collective could not start (" + error_text(e) + ")");
  }
}

void DataParallel::wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) const {
  const auto started = std::chrono::steady_clock::now();
  try {
    work->wait(timeout_);
  } catch (const std::exception& e) {
    // A peer that died closes its connections (the collective fails at once); one that hangs or
    // skipped the collective leaves it waiting until the timeout. Gloo's own timer starts when
    // its thread takes the operation, a little before `started`, so under load its "Timed out"
    // can come just short of the timeout measured here.
    const bool timed_out = std::chrono::steady_clock::now() - started >= timeout_ ||
                           error_text(e).find("Timed out") != std::string::npos;
    fail(what + ": a collective " +
         (timed_out ? "did not complete within " + seconds_text(timeout_) +
                          ": a peer process may have died, hung or skipped it"
                    : std::string("failed: a peer process may have died")) +
         " (LibTorch: " + error_text(e) + ")");
  }
}

c10::intrusive_ptr<c10d::Work> DataParallel::start_all_reduce(at::Tensor& tensor,
                                                              const std::string& what) {
  return start(what, [&] {
    std::vector<at::Tensor> tensors{tensor};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    options.timeout = timeout_;
    return group_->allreduce(tensors, options);
  });
}

void DataParallel::all_reduce(at::Tensor& tensor, const std::string& what) {
  wait(start_all_reduce(tensor, what), what);
}

// Every rank's `tensor` (the same shape on every rank), in rank order.
std::vector<at::Tensor> DataParallel::all_gather(const at::Tensor& tensor, const std::string& what) {
  std::vector<at::Tensor> input{tensor};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int r = 0; r < world_size_; ++r) output[0].push_back(at::empty_like(tensor));
  wait(start(what,
             [&] {
               c10d::AllgatherOptions options;
               options.timeout = timeout_;
               return group_->allgather(output, input, options);
             }),
       what);
  return output[0];
}

std::vector<int64_t> DataParallel::all_gather_int64(int64_t value, const std::string& what) {
  std::vector<int64_t> values;
  for (const at::Tensor& t :
       all_gather(at::full({1}, value, at::dtype(at::kLong).device(device_)), what))
    values.push_back(t.item<int64_t>());
  return values;
}

std::vector<std::string> DataParallel::all_gather_text(const std::string& text,
                                                       const std::string& what) {
  const std::vector<int64_t> sizes = all_gather_int64(static_cast<int64_t>(text.size()), what);
  const int64_t longest = *std::max_element(sizes.begin(), sizes.end());
  at::Tensor mine = at::zeros({longest}, at::kByte);
  std::memcpy(mine.data_ptr(), text.data(), text.size());
  const std::vector<at::Tensor> all = all_gather(mine.to(device_), what);
  std::vector<std::string> texts;
  for (int r = 0; r < world_size_; ++r) {
    const at::Tensor t = all[static_cast<size_t>(r)].cpu();
    texts.emplace_back(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(sizes[r]));
  }
  return texts;
}

// Names, shapes and dtypes: one hash per rank, all-gathered; only when they differ do the ranks
// exchange the full lists, so every rank names the same first difference.
void DataParallel::check_signatures() {
  const std::string what = "broadcast_parameters (comparing the ranks' parameters)";
  std::string signature;
  for (const auto& [name, tensor] : parameters_) signature += signature_line(name, tensor) + "\n";
  const std::vector<int64_t> hashes =
      all_gather_int64(static_cast<int64_t>(fnv1a(signature)), what);
  if (std::all_of(hashes.begin(), hashes.end(), [&](int64_t h) { return h == hashes[0]; })) return;
  const std::vector<std::string> texts = all_gather_text(signature, what);
  std::vector<int> differing;
  for (int r = 1; r < world_size_; ++r)
    if (texts[r] != texts[0]) differing.push_back(r);
  if (differing.empty()) return;  // a hash collision of equal lists cannot happen; be safe
  const int other = differing.front();
  const auto ours = lines_of(texts[0]), theirs = lines_of(texts[other]);
  size_t k = 0;
  while (k < ours.size() && k < theirs.size() && ours[k] == theirs[k]) ++k;
  auto side = [&](const std::vector<std::string>& lines) {
    return k < lines.size() ? lines[k] : std::string("no parameter there");
  };
  std::string message = "broadcast_parameters: rank " + std::to_string(other) +
                        "'s parameters differ from rank 0's (a different model or config on "
                        "some rank?): parameter " +
                        std::to_string(k) + ": rank 0 has " + side(ours) + ", rank " +
                        std::to_string(other) + " has " + side(theirs);
  if (ours.size() != theirs.size())
    message += " (rank 0 has " + std::to_string(ours.size()) + " parameters, rank " +
               std::to_string(other) + " has " + std::to_string(theirs.size()) + ")";
  if (differing.size() > 1) {
    message += "; ranks differing from rank 0:";
    for (int r : differing) message += " " + std::to_string(r);
  }
  fail(message);
}

void DataParallel::broadcast_parameters() {
  check_signatures();
  if (world_size_ == 1) return;
  c10::NoGradGuard no_grad;
  // Every parameter's bytes at once (Gloo queues them), through a contiguous copy for the rare
  // non-contiguous parameter.
  struct Pending {
    c10::intrusive_ptr<c10d::Work> work;
    at::Tensor target, buffer;
  };
  std::vector<Pending> pending;
  for (const auto& [name, tensor] : parameters_) {
    Pending p;
    p.target = tensor;
    if (!tensor.is_contiguous()) p.buffer = tensor.contiguous();
    std::vector<at::Tensor> tensors{bytes_of(p.buffer.defined() ? p.buffer : tensor)};
    p.work = start("broadcast_parameters (" + name + ")", [&] {
      c10d::BroadcastOptions options;
      options.rootRank = 0;
      options.timeout = timeout_;
      return group_->broadcast(tensors, options);
    });
    pending.push_back(std::move(p));
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    wait(pending[i].work, "broadcast_parameters (" + parameters_[i].first + ")");
    if (pending[i].buffer.defined() && rank_ != 0) pending[i].target.copy_(pending[i].buffer);
  }
  // Verified, not assumed: the same bytes everywhere.
  const uint64_t mine = weights::hash_tensors(parameters_);
  const std::vector<int64_t> hashes =
      all_gather_int64(static_cast<int64_t>(mine), "broadcast_parameters (verifying)");
  std::string differing;
  for (int r = 1; r < world_size_; ++r)
    if (hashes[r] != hashes[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  if (!differing.empty())
    fail("broadcast_parameters: after the broadcast, the parameters of rank(s) " + differing +
         " still differ from rank 0's (hashes of names and bytes compared)");
}

// One all-reduce of 2 * n int64: per parameter, the number of ranks without a gradient, and a
// bit mask of those ranks. Every rank sees the same sums and throws the same error.
void DataParallel::check_gradients() {
  const int64_t n = static_cast<int64_t>(parameters_.size());
  at::Tensor flags = at::zeros({2 * n}, at::kLong);
  int64_t* f = flags.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    if (!parameters_[i].second.grad().defined()) {
      f[i] = 1;
      if (rank_ < 62) f[n + i] = int64_t{1} << rank_;
    }
  if (world_size_ > 1) {
    flags = flags.to(device_);
    all_reduce(flags, "reduce_gradients (checking which parameters have gradients)");
    flags = flags.cpu();
    f = flags.data_ptr<int64_t>();
  }
  std::vector<int64_t> missing;
  for (int64_t i = 0; i < n; ++i)
    if (f[i] > 0) missing.push_back(i);
  if (missing.empty()) return;
  constexpr size_t kListed = 10;
  std::string list;
  for (size_t k = 0; k < missing.size() && k < kListed; ++k) {
    const int64_t i = missing[k];
    list += (k ? ", " : "") + parameters_[i].first + " (on " +
            ranks_text(f[i], f[n + i], world_size_) + ")";
  }
  if (missing.size() > kListed)
    list += ", and " + std::to_string(missing.size() - kListed) + " more";
  fail("reduce_gradients: " + std::to_string(missing.size()) + " of " + std::to_string(n) +
       " parameters have no gradient: " + list +
       ". Every parameter given to DataParallel needs a gradient on every rank at every step: "
       "leave frozen or unused parameters out of its list, or give them a part in every rank's "
       "loss");
}

void DataParallel::reduce_gradients() {
  check_gradients();
  if (world_size_ == 1) return;
  c10::NoGradGuard no_grad;
  const std::string count = std::to_string(buckets_.size());
  auto what = [&](size_t b) {
    return "reduce_gradients (all-reduce of bucket " + std::to_string(b + 1) + " of " + count + ")";
  };
  // Pack and launch every bucket, then wait in order: while bucket b travels, b + 1 is packed,
  // and bucket b is unpacked while later ones travel.
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    if (!bucket.buffer.defined())
      bucket.buffer = at::empty({bucket.numel}, at::dtype(bucket.wire).device(device_));
    for (size_t k = 0; k < bucket.members.size(); ++k) {
      const at::Tensor grad = parameters_[bucket.members[k]].second.grad();
      bucket.buffer.narrow(0, bucket.offsets[k], grad.numel()).view(grad.sizes()).copy_(grad);
    }
    works.push_back(start_all_reduce(bucket.buffer, what(b)));
  }
  const at::Tensor world = at::scalar_tensor(static_cast<double>(world_size_), at::kDouble);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    wait(works[b], what(b));
    Bucket& bucket = buckets_[b];
    for (size_t k = 0; k < bucket.members.size(); ++k) {
      at::Tensor grad = parameters_[bucket.members[k]].second.mutable_grad();
      // The sum divided in the wire dtype and rounded once into the gradient's.
      at::div_out(grad, bucket.buffer.narrow(0, bucket.offsets[k], grad.numel()).view(grad.sizes()),
                  world);
    }
  }
}

double DataParallel::average(double value) {
  if (world_size_ == 1) return value;
  at::Tensor t = at::full({1}, value, at::dtype(at::kDouble).device(device_));
  all_reduce(t, "average");
  return t.item<double>() / world_size_;
}

int64_t DataParallel::sum(int64_t count) {
  if (world_size_ == 1) return count;
  at::Tensor t = at::full({1}, count, at::dtype(at::kLong).device(device_));
  all_reduce(t, "sum");
  return t.item<int64_t>();
}

}  // namespace blocks::train
