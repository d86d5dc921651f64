// blockc generate: a tokenizer (--tokenizer, or the Hugging Face folder's), the prompt's ids
// (BOS first when the tokenizer names one), blocks::generate::generate (with an unconditional
// stream under --guidance-scale), and the text streamed to stdout as it grows (or one JSON
// object with ids and log-probabilities). Images (--image, or tensors of the --prompt-tokens
// file) are given at prefill only.
#include <c10/core/GradMode.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "blocks/models/deep_fusion_module.h"
#include "blocks/models/early_fusion_module.h"
#include "framework/generate/generate.h"
#include "framework/hf/folder.h"
#include "framework/io/files.h"
#include "framework/text/tokenizer.h"
#include "framework/weights/safetensors.h"
#include "tools/blockc/json_output.h"
#include "tools/blockc/model_commands.h"
#include "tools/blockc/model_prepare.h"

namespace blockc {

namespace {

// Puts --image's pixel_values where the model takes them, or logs why not and returns false.
// An early-fusion model: each image placeholder of the prompt becomes the run its image fills
// (a prompt already expanded stays as it is); a prompt without one gets the images' runs, with
// their markers, after its BOS, where LLaVA's and KOSMOS's prompts put them. A deep-fusion
// model whose encoder takes pixel_values: one batch row of them ([1, images, ...]).
bool place_images(blocks::ModelModule& model, const at::Tensor& pixels,
                  std::vector<int64_t>& prompt, std::optional<int64_t> bos,
                  std::map<std::string, at::Tensor>& inputs) {
  const int64_t images = pixels.size(0);
  if (auto* fusion = dynamic_cast<blocks::EarlyFusionModel*>(&model)) {
    const blocks::EarlyFusionModel::Part* part = nullptr;
    for (const auto& [name, p] : fusion->parts)
      if (!part && (p.input == "pixel_values" || p.input == name + ".pixel_values")) part = &p;
    if (!part) {
      spdlog::error("--image: no encoder of the model takes pixel_values");
      return false;
    }
    const auto count = std::count(prompt.begin(), prompt.end(), part->placeholder);
    std::vector<int64_t> run;
    if (part->begin) run.push_back(*part->begin);
    run.insert(run.end(), part->tokens, part->placeholder);
    if (part->end) run.push_back(*part->end);
    if (count == 0) {
      const auto at = prompt.begin() + (bos && !prompt.empty() && prompt.front() == *bos ? 1 : 0);
      std::vector<int64_t> runs;
      for (int64_t i = 0; i < images; ++i) runs.insert(runs.end(), run.begin(), run.end());
      prompt.insert(at, runs.begin(), runs.end());
    } else if (count == images && part->tokens > 1) {
      std::vector<int64_t> expanded;
      for (int64_t id : prompt)
        if (id == part->placeholder)
          expanded.insert(expanded.end(), part->tokens, id);
        else
          expanded.push_back(id);
      prompt = std::move(expanded);
    } else if (count != images * part->tokens) {
      spdlog::error(
          "the prompt holds {} image placeholders (token {}) and --image gives {} "
          "image{}: give one placeholder per image, or none to put the images first",
          count, part->placeholder, images, images == 1 ? "" : "s");
      return false;
    }
    inputs[part->input] = pixels;
    return true;
  }
  const auto specs = model.inputs();
  const bool takes_pixels = std::any_of(
      specs.begin(), specs.end(), [](const auto& spec) { return spec.name == "pixel_values"; });
  if (dynamic_cast<blocks::DeepFusionModel*>(&model) && takes_pixels) {
    inputs["pixel_values"] = pixels.unsqueeze(0);
    return true;
  }
  std::string names;
  for (const auto& spec : specs) names += (names.empty() ? "" : ", ") + spec.name;
  spdlog::error("--image: the model takes no images (its inputs: {}){}", names,
                dynamic_cast<blocks::DeepFusionModel*>(&model)
                    ? "; give its encoder's input in the --prompt-tokens file"
                    : "");
  return false;
}

// Whether a text prompt for an early-fusion model can hold its image placeholders: a tokenizer
// with no id for the placeholder (LLaVA's <image>, 32000, is added beside the SentencePiece
// model, in files blocks does not read) reads a written `<image>` as plain pieces, and the
// images would go elsewhere. Logs and returns false when the text writes one.
bool placeholder_is_readable(blocks::ModelModule& model,
                             const blocks::text::Tokenizer& tokenizer,
                             const std::string& tokenizer_path, const std::string& text) {
  const auto* fusion = dynamic_cast<blocks::EarlyFusionModel*>(&model);
  if (!fusion) return true;
  for (const auto& [name, part] : fusion->parts) {
    if (part.placeholder < tokenizer.vocab_size()) continue;
    for (size_t at = text.find('<'); at != std::string::npos; at = text.find('<', at + 1)) {
      const size_t end = text.find('>', at);
      if (end == std::string::npos || end - at > 40) continue;
      const std::string tag = text.substr(at, end + 1 - at);
      if (tag.find_first_of(" \n\t", 0) != std::string::npos) continue;
      spdlog::error("the prompt writes {} at byte {}, but the tokenizer {} has no id for the "
                    "model's image placeholder (token {}): it would be read as plain text; give "
                    "the prompt as ids (--prompt-tokens), or without the placeholder to put the "
                    "images first", tag, at, tokenizer_path, part.placeholder);
      return false;
    }
  }
  return true;
}

// With --truncate, drops the oldest tokens after a leading BOS until `prompt` + max_new_tokens
// fits `positions`; logs and returns false where that would cut an image's run or leave nothing.
bool fit_prompt(std::vector<int64_t>& prompt, const std::string& which, int64_t positions,
                int64_t max_new_tokens, std::optional<int64_t> bos,
                const std::set<int64_t>& media) {
  const auto length = static_cast<int64_t>(prompt.size());
  if (positions <= 0 || length + max_new_tokens <= positions) return true;
  const int64_t first = bos && prompt.front() == *bos ? 1 : 0;
  const int64_t drop = length + max_new_tokens - positions;
  if (length - drop <= first) {
    spdlog::error(
        "--truncate: max_new_tokens {} leaves no room for the {} in the model's {} "
        "positions",
        max_new_tokens, which, positions);
    return false;
  }
  for (int64_t i = first; i < first + drop; ++i)
    if (media.count(prompt[static_cast<size_t>(i)])) {
      spdlog::error(
          "--truncate: fitting the {} of {} tokens into the model's {} positions "
          "(with max_new_tokens {}) would cut an image's placeholders",
          which, length, positions, max_new_tokens);
      return false;
    }
  prompt.erase(prompt.begin() + first, prompt.begin() + first + drop);
  spdlog::warn("--truncate: dropped the {}'s oldest {} tokens to fit the model's {} positions",
               which, drop, positions);
  return true;
}

// The ids of a text prompt, BOS first when the tokenizer names one; logs and returns nullopt
// for text naming a special token the tokenizer does not have (it would be read as text).
std::optional<std::vector<int64_t>> encode_prompt(const blocks::text::Tokenizer& tokenizer,
                                                  const std::string& tokenizer_path,
                                                  const std::string& text,
                                                  const std::string& which) {
  const auto [token, at] = blocks::text::unknown_special_token(tokenizer, text);
  if (at != std::string::npos) {
    spdlog::error(
        "the {} names {} at byte {}, which the tokenizer {} does not have as a "
        "special token: it would be read as plain text (a tokenizer of another "
        "model?)",
        which, token, at, tokenizer_path);
    return std::nullopt;
  }
  std::vector<int64_t> ids;
  if (tokenizer.bos) ids.push_back(*tokenizer.bos);
  const auto encoded = tokenizer.encode(text);
  ids.insert(ids.end(), encoded.begin(), encoded.end());
  return ids;
}

}  // namespace

int run_generate(const ModelArgs& args) {
  std::string tokenizer_path = args.tokenizer;
  // A Hugging Face folder's own tokenizer, where it has one (prompts as ids need none).
  if (tokenizer_path.empty() && blocks::hf::is_folder(args.model)) {
    const std::filesystem::path folder(args.model);
    if (std::filesystem::exists(folder / "tokenizer.json") ||
        std::filesystem::exists(folder / "tokenizer.model"))
      tokenizer_path = args.model;
  }
  std::unique_ptr<blocks::text::Tokenizer> tokenizer;
  if (!tokenizer_path.empty()) tokenizer = blocks::text::load_tokenizer(tokenizer_path);
  std::vector<std::vector<int64_t>> prompts;
  std::map<std::string, at::Tensor> prefill;
  std::string prompt_text;
  if (!args.prompt_tokens.empty()) {
    const auto file = blocks::weights::SafetensorsFile::open(args.prompt_tokens);
    const char* name = file.contains("tokens") ? "tokens" : "input_ids";
    if (!file.contains(name)) {
      spdlog::error("{}: no `tokens` (or `input_ids`) tensor", args.prompt_tokens);
      return 1;
    }
    at::Tensor t = file.tensor(name).to(at::kLong).contiguous();
    if (t.dim() == 1) t = t.unsqueeze(0);
    // Prompts of different lengths: a tokenizer's padded batch, its attention_mask marking each
    // row's own tokens (pads on either side).
    at::Tensor mask;
    if (file.contains("attention_mask")) {
      mask = file.tensor("attention_mask").to(at::kLong);
      if (mask.dim() == 1) mask = mask.unsqueeze(0);
      if (mask.sizes() != t.sizes()) {
        spdlog::error("{}: attention_mask is {} but the {} are {}", args.prompt_tokens,
                      c10::str(mask.sizes()), name, c10::str(t.sizes()));
        return 1;
      }
    }
    for (int64_t r = 0; r < t.size(0); ++r) {
      const int64_t* row = t[r].data_ptr<int64_t>();
      std::vector<int64_t> ids;
      for (int64_t k = 0; k < t.size(1); ++k)
        if (!mask.defined() || mask[r][k].item<int64_t>() != 0) ids.push_back(row[k]);
      prompts.push_back(std::move(ids));
    }
    const auto infos = file.tensors();
    for (const auto& info : infos)
      if (info.name != name && info.name != "attention_mask")
        prefill[info.name] = file.tensor(info.name);
  } else {
    prompt_text = args.prompt;
    if (!args.prompt_file.empty()) prompt_text = blocks::io::read_file(args.prompt_file);
    if (prompt_text.empty() && args.prompt_file.empty()) {
      spdlog::error("give --prompt TEXT, --prompt-file FILE or --prompt-tokens FILE");
      return 2;
    }
    if (!tokenizer) {
      spdlog::error(
          "a text prompt needs --tokenizer (the model is not a Hugging Face folder "
          "with a tokenizer)");
      return 2;
    }
    auto ids = encode_prompt(*tokenizer, tokenizer_path, prompt_text, "prompt");
    if (!ids) return 1;
    prompts.push_back(std::move(*ids));
  }
  if (!args.negative_prompt.empty() && !tokenizer) {
    spdlog::error(
        "--negative-prompt needs --tokenizer (the model is not a Hugging Face folder "
        "with a tokenizer)");
    return 2;
  }
  // Images before the weights: a file that is not an image fails at once.
  std::optional<at::Tensor> pixels;
  if (!args.images.empty()) {
    if (prompts.size() != 1 || prefill.count("pixel_values")) {
      spdlog::error(
          "--image gives the images of one prompt; for {}, give pixel_values in the "
          "--prompt-tokens file",
          prompts.size() != 1 ? "a batch"
                              : "a file holding "
                                "pixel_values too");
      return 2;
    }
    auto read = read_images(args);
    if (auto* code = std::get_if<int>(&read)) return *code;
    pixels = std::get<at::Tensor>(read);
  }
  auto prepared = prepare(args, /*keep_checkpoint_dtype=*/false);
  if (auto* code = std::get_if<int>(&prepared)) return *code;
  Prepared& p = std::get<Prepared>(prepared);
  const std::optional<int64_t> bos = tokenizer ? tokenizer->bos : std::nullopt;
  if (pixels && tokenizer && !prompt_text.empty() &&
      !placeholder_is_readable(*p.model.module, *tokenizer, tokenizer_path, prompt_text))
    return 1;
  if (pixels && !place_images(*p.model.module, *pixels, prompts[0], bos, prefill)) return 1;
  const auto dump = p.doc.dump()["model"];
  const auto* embeddings = dump.contains("embeddings") ? &dump["embeddings"]
                           : dump.contains("decoder") && dump["decoder"].contains("embeddings")
                               ? &dump["decoder"]["embeddings"]
                               : nullptr;
  blocks::generate::GenerateOptions options;
  options.prefill_inputs = std::move(prefill);
  if (embeddings) {
    // A fusion model's extra rows (mllama's <|image|>) are ids its prompts may hold.
    const bool fused = dump.contains("fusion_vocab_size") && dump["fusion_vocab_size"].is_number();
    const int64_t fusion = fused ? dump["fusion_vocab_size"].get<int64_t>() : 0;
    const int64_t vocab = embeddings->value("vocab_size", int64_t{0}) + fusion;
    if (tokenizer && vocab > 0 && tokenizer->vocab_size() > vocab) {
      spdlog::error(
          "the tokenizer {} has {} ids but the model's embeddings have {}: a tokenizer "
          "of another model?",
          tokenizer_path, tokenizer->vocab_size(), vocab);
      return 1;
    }
    // Embeddings padded past the tokenizer (LLaVA's 32064 rows for 32000 ids): the rows beyond
    // are no text, and an id there could not be decoded.
    if (tokenizer && tokenizer->vocab_size() < vocab) {
      options.allowed_begin = 0;
      options.allowed_end = tokenizer->vocab_size();
      spdlog::debug("choosing among the tokenizer's {} ids of the model's {}",
                    tokenizer->vocab_size(), vocab);
    }
    for (size_t r = 0; r < prompts.size(); ++r)
      for (size_t k = 0; k < prompts[r].size(); ++k) {
        const int64_t id = prompts[r][k];
        if (vocab > 0 && (id < 0 || id >= vocab)) {
          spdlog::error("prompt {}, token {}: id {} is outside the model's {} embeddings", r, k, id,
                        vocab);
          return 1;
        }
      }
    if (embeddings->contains("max_positions") && (*embeddings)["max_positions"].is_number())
      options.max_positions = (*embeddings)["max_positions"].get<int64_t>();
  }
  const auto media = blocks::generate::media_ids(*p.model.module);
  if (args.truncate)
    for (size_t r = 0; r < prompts.size(); ++r)
      if (!fit_prompt(prompts[r], "prompt " + std::to_string(r), options.max_positions,
                      args.max_new_tokens, bos, media))
        return 1;
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
    if (bos) negative.push_back(*bos);
    if (!args.negative_prompt.empty()) {
      auto ids = encode_prompt(*tokenizer, tokenizer_path, args.negative_prompt, "negative prompt");
      if (!ids) return 1;
      negative = std::move(*ids);
      if (args.truncate && !fit_prompt(negative, "negative prompt", options.max_positions,
                                       args.max_new_tokens, bos, media))
        return 1;
    }
    if (negative.empty()) {
      spdlog::error(
          "--guidance-scale needs --negative-prompt (the tokenizer has no BOS to "
          "start the unconditional stream)");
      return 2;
    }
    options.unconditional.assign(prompts.size(), negative);
    options.guidance_scale = args.guidance_scale;
    options.guidance_space = blocks::generate::parse_guidance_space(args.guidance_space);
  }
  if (tokenizer && tokenizer->eos) options.stop_ids.push_back(*tokenizer->eos);
  options.stop_ids.insert(options.stop_ids.end(), args.stop_ids.begin(), args.stop_ids.end());
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
