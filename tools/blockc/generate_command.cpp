// blockc generate: a tokenizer (--tokenizer, or the Hugging Face folder's), the prompt's ids
// (BOS first when the tokenizer names one), blocks::generate::generate (with an unconditional
// stream under --guidance-scale), and the text streamed to stdout as it grows (or one JSON
// object with ids and log-probabilities).
#include <spdlog/spdlog.h>

#include <c10/core/GradMode.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "framework/generate/generate.h"
#include "framework/hf/folder.h"
#include "framework/io/files.h"
#include "framework/text/tokenizer.h"
#include "tools/blockc/json_output.h"
#include "framework/weights/safetensors.h"
#include "tools/blockc/model_commands.h"
#include "tools/blockc/model_prepare.h"

namespace blockc {

int run_generate(const ModelArgs& args) {
  std::string tokenizer_path = args.tokenizer;
  if (tokenizer_path.empty() && blocks::hf::is_folder(args.model)) tokenizer_path = args.model;
  std::unique_ptr<blocks::text::Tokenizer> tokenizer;
  if (!tokenizer_path.empty()) tokenizer = blocks::text::load_tokenizer(tokenizer_path);
  std::vector<std::vector<int64_t>> prompts;
  if (!args.prompt_tokens.empty()) {
    const auto file = blocks::weights::SafetensorsFile::open(args.prompt_tokens);
    if (!file.contains("tokens")) {
      spdlog::error("{}: no `tokens` tensor", args.prompt_tokens);
      return 1;
    }
    at::Tensor t = file.tensor("tokens").to(at::kLong);
    if (t.dim() == 1) t = t.unsqueeze(0);
    for (int64_t r = 0; r < t.size(0); ++r)
      prompts.emplace_back(t[r].data_ptr<int64_t>(), t[r].data_ptr<int64_t>() + t.size(1));
  } else {
    std::string text = args.prompt;
    if (!args.prompt_file.empty()) {
      text = blocks::io::read_file(args.prompt_file);
    }
    if (text.empty() && args.prompt_file.empty()) {
      spdlog::error("give --prompt TEXT, --prompt-file FILE or --prompt-tokens FILE");
      return 2;
    }
    if (!tokenizer) {
      spdlog::error("a text prompt needs --tokenizer (the model is not a Hugging Face folder)");
      return 2;
    }
    std::vector<int64_t> ids;
    if (tokenizer->bos) ids.push_back(*tokenizer->bos);
    const auto encoded = tokenizer->encode(text);
    ids.insert(ids.end(), encoded.begin(), encoded.end());
    prompts.push_back(std::move(ids));
  }
  auto prepared = prepare(args, /*keep_checkpoint_dtype=*/false);
  if (auto* code = std::get_if<int>(&prepared)) return *code;
  Prepared& p = std::get<Prepared>(prepared);
  const auto dump = p.doc.dump()["model"];
  const auto* embeddings = dump.contains("embeddings") ? &dump["embeddings"]
                           : dump.contains("decoder") && dump["decoder"].contains("embeddings")
                               ? &dump["decoder"]["embeddings"]
                               : nullptr;
  blocks::generate::GenerateOptions options;
  if (embeddings) {
    const int64_t vocab = embeddings->value("vocab_size", int64_t{0});
    if (tokenizer && vocab > 0 && tokenizer->vocab_size() > vocab) {
      spdlog::error("the tokenizer {} has {} ids but the model's embeddings have {}: a tokenizer "
                    "of another model?", tokenizer_path, tokenizer->vocab_size(), vocab);
      return 1;
    }
    for (const auto& prompt : prompts)
      for (int64_t id : prompt)
        if (vocab > 0 && (id < 0 || id >= vocab)) {
          spdlog::error("prompt id {} is outside the model's {} embeddings", id, vocab);
          return 1;
        }
    if (embeddings->contains("max_positions") && (*embeddings)["max_positions"].is_number())
      options.max_positions = (*embeddings)["max_positions"].get<int64_t>();
  }
  options.max_new_tokens = args.max_new_tokens;
  options.sampling = {.greedy = args.greedy,
                      .temperature = args.temperature,
                      .top_k = args.top_k,
                      .top_p = args.top_p,
                      .min_p = args.min_p,
                      .repetition_penalty = args.repetition_penalty};
  options.seed = args.sample_seed;
  if (args.guidance_scale != 1.0) {
    std::vector<int64_t> negative;
    if (tokenizer && tokenizer->bos) negative.push_back(*tokenizer->bos);
    if (!args.negative_prompt.empty()) {
      if (!tokenizer) {
        spdlog::error("--negative-prompt needs --tokenizer");
        return 2;
      }
      const auto encoded = tokenizer->encode(args.negative_prompt);
      negative.insert(negative.end(), encoded.begin(), encoded.end());
    }
    if (negative.empty()) {
      spdlog::error("--guidance-scale needs --negative-prompt (the tokenizer has no BOS to "
                    "start the unconditional stream)");
      return 2;
    }
    options.unconditional.assign(prompts.size(), negative);
    options.guidance_scale = args.guidance_scale;
    options.guidance_space = blocks::generate::parse_guidance_space(args.guidance_space);
  }
  if (tokenizer && tokenizer->eos) options.stop_ids.push_back(*tokenizer->eos);
  if (!args.stops.empty() && tokenizer)
    options.stop_when = [&](size_t, const std::vector<int64_t>& ids) {
      const std::string text = tokenizer->decode(ids);
      for (const auto& s : args.stops)
        if (text.find(s) != std::string::npos) return true;
      return false;
    };
  // Streaming (one prompt, text out): each step prints what the decoded text gained.
  std::string shown;
  std::vector<int64_t> streamed;
  if (!args.json && tokenizer && prompts.size() == 1)
    options.on_step = [&](const std::vector<int64_t>& ids) {
      if (ids[0] < 0) return;
      streamed.push_back(ids[0]);
      const std::string text = tokenizer->decode(streamed);
      if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0 &&
          text.find("\xEF\xBF\xBD", shown.size()) == std::string::npos) {
        std::cout << text.substr(shown.size()) << std::flush;
        shown = text;
      }
    };
  p.model.module->eval();
  const auto rows = blocks::generate::generate(*p.model.module, prompts, options);
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& row : rows) {
      nlohmann::json r = {{"ids", row.ids}, {"log_probs", row.log_probs}, {"stop", row.stop}};
      if (tokenizer) r["text"] = tokenizer->decode(row.ids);
      out.push_back(r);
    }
    std::cout << json_line({{"rows", out}});
    return 0;
  }
  if (options.on_step) {
    const std::string text = tokenizer->decode(rows[0].ids);
    if (text.size() > shown.size()) std::cout << text.substr(shown.size());
    std::cout << "\n";
    return 0;
  }
  for (const auto& row : rows) {
    if (tokenizer) {
      std::cout << tokenizer->decode(row.ids) << "\n";
    } else {
      for (int64_t id : row.ids) std::cout << id << " ";
      std::cout << "\n";
    }
  }
  return 0;
}

}  // namespace blockc
