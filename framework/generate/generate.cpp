#include "framework/generate/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

#include "blocks/models/early_fusion_module.h"

namespace blocks::generate {

namespace {

// One batch of prompts, left-padded, prefilled into its own cache (with the prefill inputs),
// then fed a token a row each step; `logits` are the last position's. The mask hides the pads
// from the model, which is fed the row's first id that is not media (a pad placeholder would
// be a run without its image); `seen`, what the repetition penalty looks at, pads with the
// row's first id, so that it sees only ids the row holds.
struct Stream {
  at::Tensor tokens, seen, mask, logits;
  std::vector<int64_t> next_position;
  DecodeCache cache;
  at::Device device;

  Stream(ModelModule& model, const std::vector<std::vector<int64_t>>& prompts, int64_t extra,
         at::Device on, const std::set<int64_t>& media,
         const std::map<std::string, at::Tensor>& inputs)
      : cache(0), device(on) {
    const auto longs = at::TensorOptions().dtype(at::kLong);
    const auto batch = static_cast<int64_t>(prompts.size());
    int64_t width = 0;
    for (const auto& p : prompts) width = std::max(width, static_cast<int64_t>(p.size()));
    tokens = at::empty({batch, width}, longs);
    seen = at::empty({batch, width}, longs);
    mask = at::zeros({batch, width}, longs);
    at::Tensor positions = at::zeros({batch, width}, longs);
    for (int64_t r = 0; r < batch; ++r) {
      const auto& p = prompts[static_cast<size_t>(r)];
      const auto length = static_cast<int64_t>(p.size()), pads = width - length;
      const auto plain =
          std::find_if(p.begin(), p.end(), [&](int64_t id) { return !media.count(id); });
      tokens[r].fill_(plain == p.end() ? int64_t{0} : *plain);
      seen[r].fill_(p.front());
      tokens[r].narrow(0, pads, length).copy_(at::tensor(p, longs));
      seen[r].narrow(0, pads, length).copy_(at::tensor(p, longs));
      mask[r].narrow(0, pads, length).fill_(1);
      positions[r].narrow(0, pads, length).copy_(at::arange(length, longs));
      next_position.push_back(length);
    }
    cache = model.make_cache(width + extra);
    ModelInput input;
    input.tokens = tokens.to(device);
    input.attention_mask = mask.to(device);
    input.positions = positions.to(device);
    input.cache = &cache;
    input.logits_to_keep = 1;
    for (const auto& [name, tensor] : inputs) input.named[name] = tensor.to(device);
    logits = model.forward(input).logits.select(1, -1);
  }

  at::Tensor step(ModelModule& model, const at::Tensor& ids) {
    const auto longs = at::TensorOptions().dtype(at::kLong);
    const int64_t batch = ids.size(0);
    mask = at::cat({mask, at::ones({batch, 1}, longs)}, 1);
    at::Tensor at_position = at::empty({batch, 1}, longs);
    for (int64_t r = 0; r < batch; ++r) at_position[r][0] = next_position[static_cast<size_t>(r)]++;
    ModelInput next;
    next.tokens = ids.unsqueeze(1).to(device);
    next.attention_mask = mask.to(device);
    next.positions = at_position.to(device);
    next.cache = &cache;
    logits = model.forward(next).logits.select(1, -1);
    return logits;
  }
};

// ATen's own threads off while decoding on the CPU: a step is a chain of matrix products,
// which BLAS runs on threads of its own, and between them ATen's OpenMP workers spin on the
// same cores (libgomp's default wait policy) until BLAS's threads yield. On this project's 2-core
// machine that cost 40% of a batch-8 step of a 125M Llama (95 -> 158 tokens/s, the same as with
// OMP_WAIT_POLICY=PASSIVE); BLAS keeps its threads (batch 1 is unchanged, at 62 tokens/s).
struct SerialAten {
  int before = at::get_num_threads();
  SerialAten() { at::set_num_threads(1); }
  ~SerialAten() { at::set_num_threads(before); }
};

}  // namespace

std::set<int64_t> media_ids(const ModelModule& model) {
  std::set<int64_t> ids;
  if (const auto* fusion = dynamic_cast<const EarlyFusionModel*>(&model))
    for (const auto& [name, part] : fusion->parts) {
      ids.insert(part.placeholder);
      if (part.begin) ids.insert(*part.begin);
      if (part.end) ids.insert(*part.end);
    }
  return ids;
}

std::vector<GeneratedRow> generate(ModelModule& model,
                                   const std::vector<std::vector<int64_t>>& prompts,
                                   const GenerateOptions& options) {
  options.sampling.check();
  if (prompts.empty()) throw SamplingError("no prompts to continue");
  for (size_t r = 0; r < prompts.size(); ++r) {
    if (prompts[r].empty()) throw SamplingError("prompt " + std::to_string(r) + " is empty");
    const auto length = static_cast<int64_t>(prompts[r].size());
    if (options.max_positions > 0 && length + options.max_new_tokens > options.max_positions)
      throw SamplingError("prompt " + std::to_string(r) + " of " + std::to_string(length) +
                          " tokens + max_new_tokens " + std::to_string(options.max_new_tokens) +
                          " is past the model's " + std::to_string(options.max_positions) +
                          " positions");
  }
  if (!options.unconditional.empty() && options.unconditional.size() != prompts.size())
    throw SamplingError(std::to_string(options.unconditional.size()) +
                        " unconditional prompts for " + std::to_string(prompts.size()) +
                        " prompts (one each)");
  for (size_t r = 0; r < options.unconditional.size(); ++r)
    if (options.unconditional[r].empty())
      throw SamplingError("unconditional prompt " + std::to_string(r) + " is empty");
  if (options.allowed_end != 0 &&
      !(options.allowed_begin >= 0 && options.allowed_begin < options.allowed_end))
    throw SamplingError("the allowed id range [" + std::to_string(options.allowed_begin) + ", " +
                        std::to_string(options.allowed_end) + ") is empty");
  c10::NoGradGuard no_grad;
  const auto batch = static_cast<int64_t>(prompts.size());
  const at::Device device =
      model.parameters().empty() ? at::Device(at::kCPU) : model.parameters().front().device();
  std::optional<SerialAten> serial;
  if (device.is_cpu()) serial.emplace();
  const int64_t capacity_extra = options.max_new_tokens;
  std::set<int64_t> never = media_ids(model);
  const std::set<int64_t> media = never;
  never.insert(options.suppressed_ids.begin(), options.suppressed_ids.end());
  Stream stream(model, prompts, capacity_extra, device, media, options.prefill_inputs);
  // The unconditional stream is text alone: what guidance takes away is the condition.
  std::optional<Stream> unconditional;
  if (!options.unconditional.empty())
    unconditional.emplace(model, options.unconditional, capacity_extra, device, media,
                          std::map<std::string, at::Tensor>{});
  at::Tensor logits = stream.logits;
  at::Tensor seen = stream.seen;  // [batch, width + steps], for the repetition penalty
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  std::vector<GeneratedRow> rows(prompts.size());
  std::vector<bool> done(prompts.size(), false);
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    at::Tensor raw = logits.to(at::kCPU, at::kFloat);
    if (unconditional)
      raw = guide(raw, unconditional->logits.to(at::kCPU, at::kFloat), options.guidance_scale,
                  options.guidance_space);
    if (options.allowed_end != 0) {
      at::Tensor outside = at::ones_like(raw, at::kBool);
      outside
          .narrow(1, options.allowed_begin,
                  std::min(options.allowed_end, raw.size(1)) - options.allowed_begin)
          .fill_(false);
      raw.masked_fill_(outside, -std::numeric_limits<double>::infinity());
    }
    for (int64_t id : never)
      if (id >= 0 && id < raw.size(1))
        raw.select(1, id).fill_(-std::numeric_limits<double>::infinity());
    const at::Tensor scores = process(raw, seen, options.sampling);
    const at::Tensor ids =
        options.sampling.greedy
            ? scores.argmax(-1)
            : at::multinomial(scores.softmax(-1), 1, false, generator).squeeze(-1);
    const at::Tensor log_probs = scores.log_softmax(-1).gather(1, ids.unsqueeze(1)).squeeze(1);
    std::vector<int64_t> chosen(prompts.size(), -1);
    bool all_done = true;
    for (int64_t r = 0; r < batch; ++r) {
      const auto i = static_cast<size_t>(r);
      if (done[i]) continue;
      const int64_t id = ids[r].item<int64_t>();
      chosen[i] = id;
      rows[i].ids.push_back(id);
      rows[i].log_probs.push_back(log_probs[r].item<double>());
      const auto& stops = options.stop_ids;
      if (std::find(stops.begin(), stops.end(), id) != stops.end() ||
          (options.stop_when && options.stop_when(i, rows[i].ids))) {
        done[i] = true;
        rows[i].stop = "stop";
      }
      all_done = all_done && done[i];
    }
    if (options.on_step) options.on_step(chosen);
    if (all_done || step + 1 == options.max_new_tokens) break;
    // Ended rows keep feeding their last id; their outputs are no longer read.
    seen = at::cat({seen, ids.unsqueeze(1)}, 1);
    logits = stream.step(model, ids);
    if (unconditional) unconditional->step(model, ids);
  }
  return rows;
}

}  // namespace blocks::generate
