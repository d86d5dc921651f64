#include "framework/generate/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>

namespace blocks::generate {

std::vector<GeneratedRow> generate(ModelModule& model,
                                   const std::vector<std::vector<int64_t>>& prompts,
                                   const GenerateOptions& options) {
  options.sampling.check();
  if (prompts.empty()) throw SamplingError("no prompts to continue");
  int64_t width = 0;
  for (size_t r = 0; r < prompts.size(); ++r) {
    if (prompts[r].empty()) throw SamplingError("prompt " + std::to_string(r) + " is empty");
    const auto length = static_cast<int64_t>(prompts[r].size());
    if (options.max_positions > 0 && length + options.max_new_tokens > options.max_positions)
      throw SamplingError("prompt " + std::to_string(r) + " of " + std::to_string(length) +
                          " tokens + max_new_tokens " + std::to_string(options.max_new_tokens) +
                          " is past the model's " + std::to_string(options.max_positions) +
                          " positions");
    width = std::max(width, length);
  }
  c10::NoGradGuard no_grad;
  const auto batch = static_cast<int64_t>(prompts.size());
  const auto longs = at::TensorOptions().dtype(at::kLong);
  // Left padding: pads take the row's first token (any id would do: the mask hides them, and
  // the repetition penalty sees only ids the row holds).
  at::Tensor tokens = at::empty({batch, width}, longs), mask = at::zeros({batch, width}, longs);
  at::Tensor positions = at::zeros({batch, width}, longs);
  std::vector<int64_t> next_position(prompts.size());
  for (int64_t r = 0; r < batch; ++r) {
    const auto& p = prompts[static_cast<size_t>(r)];
    const auto length = static_cast<int64_t>(p.size()), pads = width - length;
    tokens[r].fill_(p.front());
    tokens[r].narrow(0, pads, length).copy_(at::tensor(p, longs));
    mask[r].narrow(0, pads, length).fill_(1);
    positions[r].narrow(0, pads, length).copy_(at::arange(length, longs));
    next_position[static_cast<size_t>(r)] = length;
  }
  const at::Device device = model.parameters().empty() ? at::Device(at::kCPU)
                                                       : model.parameters().front().device();
  DecodeCache cache = model.make_cache(width + options.max_new_tokens);
  ModelInput input;
  input.tokens = tokens.to(device);
  input.attention_mask = mask.to(device);
  input.positions = positions.to(device);
  input.cache = &cache;
  at::Tensor logits = model.forward(input).logits.select(1, -1);
  at::Tensor seen = tokens;  // [batch, width + steps], for the repetition penalty
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  std::vector<GeneratedRow> rows(prompts.size());
  std::vector<bool> done(prompts.size(), false);
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const at::Tensor scores = process(logits.to(at::kCPU), seen, options.sampling);
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
    const at::Tensor fed = ids.unsqueeze(1);
    seen = at::cat({seen, fed}, 1);
    mask = at::cat({mask, at::ones({batch, 1}, longs)}, 1);
    at::Tensor at_position = at::empty({batch, 1}, longs);
    for (int64_t r = 0; r < batch; ++r) at_position[r][0] = next_position[static_cast<size_t>(r)]++;
    ModelInput next;
    next.tokens = fed.to(device);
    next.attention_mask = mask.to(device);
    next.positions = at_position.to(device);
    next.cache = &cache;
    logits = model.forward(next).logits.select(1, -1);
  }
  return rows;
}

}  // namespace blocks::generate
