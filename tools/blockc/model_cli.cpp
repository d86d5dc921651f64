#include "tools/blockc/model_cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <regex>

#include "framework/config/document.h"
#include "framework/hf/family.h"

namespace blockc {

namespace {
const char* const kAdaptersHelp =
    "LoRA adapters to load onto the base weights: a file of `export --adapters-only` or a PEFT "
    "folder (adapter_config.json + adapter_model.safetensors; its scale must match the model's "
    "peft: lora; the family's names from the base folder or --model-type)";
}  // namespace

std::optional<uint64_t> parse_size(const std::string& text) {
  static const std::regex pattern(R"(\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*)",
                                  std::regex::icase);
  std::smatch m;
  if (!std::regex_match(text, m, pattern)) return std::nullopt;
  double value = std::stod(m[1]);
  std::string unit = m[2];
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!unit.empty() && unit != "B") {
    const bool binary = unit.size() == 3;
    const double base = binary ? 1024.0 : 1000.0;
    const auto power = std::string("KMGT").find(unit[0]) + 1;
    for (size_t i = 0; i < power; ++i) value *= base;
  }
  // 2^64 and more would wrap in the cast (99999999999999999999999TB gave one shard per tensor).
  if (value < 1 || value >= 18446744073709551616.0) return std::nullopt;
  return static_cast<uint64_t>(value);
}

namespace {

// Whether all of `text` is a number of type T of at least `least` (from_chars takes no sign
// for unsigned types, so "-1" fails instead of wrapping to 2^64 - 1).
template <class T>
bool whole_number(const std::string& text, T least) {
  T n = 0;
  const char* end = text.data() + text.size();
  const auto [at, error] = std::from_chars(text.data(), end, n);
  return !text.empty() && error == std::errc() && at == end && n >= least;
}

}  // namespace

CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& value) {
        if (whole_number<int64_t>(value, 1)) return std::string();
        return "expected a whole number of 1 or more, found '" + value + "'";
      },
      "POSITIVE", "positive");
}

CLI::Validator set_assignment() {
  return CLI::Validator(
      [](std::string& value) { return blocks::config::check_set(value).value_or(""); },
      "PATH=VALUE", "set");
}

CLI::Validator seed_number() {
  return CLI::Validator(
      [](std::string& value) {
        if (whole_number<uint64_t>(value, 0)) return std::string();
        return "expected a whole number from 0 to 18446744073709551615, found '" + value + "'";
      },
      "UINT64", "seed");
}

CLI::Validator byte_size() {
  return CLI::Validator(
      [](std::string& value) {
        if (parse_size(value)) return std::string();
        return "expected a size from 1B to 16EiB such as 5GB, 500MB or 2GiB, found '" + value +
               "'";
      },
      "SIZE", "size");
}

void add_max_layers(CLI::App& command, int64_t& max_layers) {
  command
      .add_option("--max-layers", max_layers,
                  "Refuse sequences of more layers than this (default " +
                      std::to_string(blocks::config::LoadLimits{}.max_layers) + ")")
      ->check(positive());
}

void add_model_commands(CLI::App& app, ModelCommands& c) {
  c.summary = app.add_subcommand(
      "summary", "Module tree with parameter counts, lr scales, bytes and FLOPs (no weights made)");
  c.summary->add_option("file", c.args.model, "Config file")->required();
  c.summary->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)")
      ->check(set_assignment());
  c.summary->add_option("--depth", c.args.depth, "Config-path levels to show (default 4)")
      ->check(CLI::Range(0, 32));
  // A plain range: CLI11's PositiveNumber printed the limit as a 300-digit number.
  c.summary->add_option("--context", c.args.context, "Sequence length for FLOPs (default 2048)")
      ->check(positive());

  c.init = app.add_subcommand("init", "Initialize a model from its config and save it");
  c.init->add_option("file", c.args.model, "Config file")->required();
  c.init->add_option("-o,--output", c.args.output, "safetensors file to write")->required();
  c.init->add_option("--seed", c.args.seed, "Random seed (default 0)")->check(seed_number());
  c.init->add_option("--dtype", c.args.dtype, "float32, bfloat16, float16 or float64");
  c.init->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)")
      ->check(set_assignment());

  c.forward = app.add_subcommand("forward", "Run a model on token ids and save the logits");
  c.forward
      ->add_option("--model", c.args.model,
                   "blocks YAML, or a Hugging Face folder (config.json + safetensors)")
      ->required();
  c.forward->add_option("--adapters", c.args.adapters, kAdaptersHelp);
  c.forward->add_option("--model-type", c.args.model_type,
                        "--adapters with a PEFT folder: the Hugging Face family whose names it "
                        "uses, when the base is not a Hugging Face folder (" +
                            blocks::hf::family_list() + ")");
  c.forward->add_option("--weights", c.args.weights,
                        "safetensors in blocks' names, or in --map's, or a Hugging Face folder "
                        "(its family's names); config.json or init's blocks_config metadata is "
                        "checked against the model's architecture (repeatable)");
  c.forward->add_option("--map", c.args.map,
                        "YAML name mapping for --weights (rules from/to); with --weights "
                        "COMPONENT=PATH, COMPONENT=MAP.yaml for a component's checkpoint "
                        "(repeatable)");
  c.forward->add_option("--seed", c.args.seed, "Random weights from this seed instead of --weights")
      ->check(seed_number());
  c.forward->add_option("--input", c.args.input,
                        "safetensors of the model's inputs by name: `tokens` (or `input_ids`) "
                        "int64 [batch, seq], optional `attention_mask`, `positions`, ...; "
                        "--image alone serves an encoder_model");
  c.forward->add_option("--output", c.args.output,
                        "safetensors to receive `logits` (`features` from an encoder_model)")
      ->required();
  c.forward->add_option("--image", c.args.images,
                        "A PNG or JPEG for the model's image encoder, prepared as the folder's "
                        "preprocessor_config.json says (CLIP: RGB, bicubic resize of the short "
                        "side, center crop, rescale, normalize); each image placeholder in the "
                        "tokens becomes the run of placeholders an image fills (repeatable, in "
                        "order)");
  c.forward->add_option("--image-processor", c.args.image_processor,
                        "preprocessor_config.json for --image (default: the --model folder's)");
  c.forward->add_option("--hidden-state", c.args.hidden_states,
                        "Also write this hidden state as `hidden.NAME` (embeddings, decoder.N, "
                        "decoder; repeatable)");
  c.forward->add_option("--dtype", c.args.dtype, "float32, bfloat16, float16 or float64");
  c.forward->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)")
      ->check(set_assignment());

  c.export_ = app.add_subcommand(
      "export", "Save a model's weights in blocks' names or as a Hugging Face folder");
  c.export_
      ->add_option("--model", c.args.model,
                   "blocks YAML, or a Hugging Face folder (config.json + safetensors)")
      ->required();
  c.export_->add_option("--weights", c.args.weights,
                        "safetensors in blocks' names, or in --map's, or a Hugging Face folder; "
                        "checked against the model's architecture as forward does (repeatable)");
  c.export_->add_option("--map", c.args.map,
                        "YAML name mapping for --weights (rules from/to); with --weights "
                        "COMPONENT=PATH, COMPONENT=MAP.yaml for a component's checkpoint "
                        "(repeatable)");
  c.export_
      ->add_option("--seed", c.args.seed, "Random weights from this seed instead of --weights")
      ->check(seed_number());
  c.export_
      ->add_option("--to", c.args.to, "blocks (one safetensors file, default) or hf (a folder)")
      ->check(CLI::IsMember({"blocks", "hf"}));
  c.export_->add_option("--model-type", c.args.model_type,
                        "Hugging Face family for --to hf (" + blocks::hf::family_list() +
                            "); default: the --model folder's, else the first family that fits");
  c.export_
      ->add_option("--max-position-embeddings", c.args.max_positions,
                   "--to hf, rotary families: the context length config.json states "
                   "(default: the source folder's; else left out)")
      ->check(positive());
  c.export_->add_option("--max-shard-size", c.args.max_shard_size,
                        "--to hf: largest shard, e.g. 5GB or 500MB (default 5GB); more than one "
                        "shard adds model.safetensors.index.json")
      ->check(byte_size());
  c.export_->add_option("-o,--output", c.args.output, "file (--to blocks) or folder (--to hf)")
      ->required();
  c.export_->add_flag("--replace", c.args.replace,
                      "--to hf: write into a folder that is not empty, replacing the checkpoint "
                      "in it (its other files stay)");
  c.export_->add_option("--dtype", c.args.dtype,
                        "float32, bfloat16, float16 or float64 (default: the checkpoint's)");
  auto* merge = c.export_->add_flag(
      "--merge-adapters", c.args.merge_adapters,
      "fold LoRA adapters into the base weights (W + alpha / rank B A) and write the model "
      "without PEFT");
  c.export_
      ->add_flag("--adapters-only", c.args.adapters_only,
                 "the LoRA adapters alone, with what trains in full (modules_to_save): --to "
                 "blocks one file in blocks' names, --to hf a PEFT folder (adapter_config.json + "
                 "adapter_model.safetensors) in the family's names; load either with --adapters")
      ->excludes(merge);
  c.export_->add_option("--adapters", c.args.adapters, kAdaptersHelp);
  c.export_->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)")
      ->check(set_assignment());

  c.train = app.add_subcommand(
      "train", "Train the model of a run file (its `train:` section), or resume a run");
  c.train->add_option("run", c.args.model,
                      "run file: a config with a `train:` section (with --resume: optional, "
                      "else the run folder's run.yaml)");
  auto* out = c.train->add_option("-o,--out", c.args.run_dir,
                                  "run folder for log.jsonl, run.yaml and checkpoints "
                                  "(default: runs/NAME, NAME the run file's)");
  c.train->add_option("--resume", c.args.run_dir,
                      "continue the run in this folder from its newest whole checkpoint")
      ->excludes(out);
  c.train->add_option("--device", c.args.device, "cpu (default), cuda or cuda:N");
  c.train
      ->add_option("--until", c.args.until,
                   "stop after this step, saving a checkpoint (resume later with --resume)")
      ->check(positive());
  c.train
      ->add_option("--peak-tflops", c.args.peak_tflops,
                   "the hardware's peak TFLOP/s for the MFU estimate (default 312, nanoGPT's "
                   "A100 bfloat16 figure)")
      ->check(CLI::PositiveNumber);
  c.train
      ->add_option("--timeout", c.args.timeout_s,
                   "data parallelism: seconds a collective may wait for the other ranks before "
                   "the run fails, naming it (a rank that died, hung or skipped it; default 120)")
      ->check(CLI::PositiveNumber);
  c.train->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)")
      ->check(set_assignment());

  c.generate = app.add_subcommand("generate", "Continue prompts with a model: text out");
  c.generate
      ->add_option("--model", c.args.model,
                   "blocks YAML, or a Hugging Face folder (config.json + safetensors)")
      ->required();
  c.generate->add_option("--weights", c.args.weights,
                         "safetensors in blocks' names, or in --map's, or a Hugging Face folder "
                         "(repeatable)");
  c.generate->add_option("--map", c.args.map, "YAML name mapping for --weights");
  c.generate->add_option("--adapters", c.args.adapters, kAdaptersHelp);
  c.generate->add_option("--tokenizer", c.args.tokenizer,
                         "tokenizer.json, tokenizer.model, a folder holding one, or `bytes` "
                         "(default: the --model folder's)");
  auto* prompt = c.generate->add_option("--prompt", c.args.prompt, "the prompt text");
  auto* prompt_file =
      c.generate->add_option("--prompt-file", c.args.prompt_file, "a file holding the prompt")
          ->excludes(prompt);
  c.generate
      ->add_option("--prompt-tokens", c.args.prompt_tokens,
                   "safetensors with `tokens` int [prompts, length]: prompts as ids, one a row "
                   "(with `attention_mask`, only each row's masked tokens); its other tensors "
                   "are inputs given at prefill (pixel_values, "
                   "vision_features, cross_attention_mask)")
      ->excludes(prompt)
      ->excludes(prompt_file);
  c.generate->add_option("--image", c.args.images,
                         "A PNG or JPEG, prepared as for forward, given at prefill: an early-fusion "
                         "model's placeholder in the prompt (or, without one, at its start) "
                         "becomes the image's run; a deep-fusion model's encoder takes it "
                         "(repeatable, in order)");
  c.generate->add_option("--image-processor", c.args.image_processor,
                         "preprocessor_config.json for --image (default: the --model folder's)");
  c.generate->add_flag("--truncate", c.args.truncate,
                       "drop the oldest prompt tokens (after BOS) that prompt + max-new-tokens "
                       "would put past the context, instead of an error");
  c.generate->add_option("--max-new-tokens", c.args.max_new_tokens, "tokens to add (default 32)")
      ->check(positive());
  c.generate->add_flag("--greedy", c.args.greedy, "the most likely token each step");
  c.generate->add_option("--temperature", c.args.temperature, "divides the logits (default 1)");
  c.generate->add_option("--top-k", c.args.top_k, "keep the k most likely tokens (0: all)");
  c.generate->add_option("--top-p", c.args.top_p, "keep the most likely tokens up to this mass");
  c.generate->add_option("--min-p", c.args.min_p, "drop tokens below min-p x the top probability");
  c.generate->add_option("--repetition-penalty", c.args.repetition_penalty,
                         "CTRL's penalty on tokens already seen (1: off)");
  c.generate->add_option("--seed", c.args.sample_seed, "seed of the draws (default 0)")
      ->check(seed_number());
  c.generate->add_option("--stop", c.args.stops,
                         "end when the text holds this string (repeatable); the tokenizer's "
                         "end-of-sequence id always ends");
  c.generate->add_option("--stop-id", c.args.stop_ids,
                         "end a prompt's row at this id, kept last (repeatable; Llama 3's "
                         "<|eot_id|>)");
  c.generate->add_option("--guidance-scale", c.args.guidance_scale,
                         "classifier-free guidance: scale (cond - uncond) + uncond (1: off)");
  c.generate->add_option("--negative-prompt", c.args.negative_prompt,
                         "the unconditional stream's prompt (default: the tokenizer's BOS alone)");
  c.generate
      ->add_option("--guidance-space", c.args.guidance_space,
                   "log_probs (Hugging Face's, default) or logits (CM3Leon's, JAM's)")
      ->check(CLI::IsMember({"log_probs", "logits"}));
  c.generate->add_flag("--json", c.args.json,
                       "one JSON object: each prompt's ids, log-probabilities, text and stop");
  c.generate->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)")
      ->check(set_assignment());
}

void set_up_logging() {
  spdlog::set_default_logger(spdlog::stderr_color_mt("blockc"));
  spdlog::set_pattern("blockc: %l: %v");
}

namespace {

// The first word that is not an option must name a command: CLI11 answered `blockc bogus` with
// "A subcommand is required" and `blockc bogus --help` with the main help and exit 0.
std::optional<int> unknown_command(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-') continue;
    std::vector<std::string> names;
    for (const CLI::App* command : app.get_subcommands({})) {
      if (command->check_name(word)) return std::nullopt;
      names.push_back(command->get_name());
    }
    std::string message = "unknown command '" + word + "'";
    if (auto guess = blocks::config::did_you_mean(word, names))
      message += "; did you mean '" + *guess + "'?";
    spdlog::error("{} (commands: {})", message, blocks::config::join(names));
    return 2;
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> parse(CLI::App& app, int argc, char** argv, const bool& verbose) {
  if (auto code = unknown_command(app, argc, argv)) return code;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (verbose) spdlog::set_level(spdlog::level::debug);
  return std::nullopt;
}

int exec_model_program(int argc, char** argv) {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  const std::string program = (self.parent_path() / "blockc-model").string();
  std::vector<char*> args(argv, argv + argc);
  args.push_back(nullptr);
  args[0] = const_cast<char*>(program.c_str());
  // libgomp reads its wait policy once, as LibTorch loads it, so it is set here, before. Its
  // default spins ATen's idle OpenMP workers on the cores OpenBLAS's own threads compute on:
  // on 2 cores, GPT-2 124M trained at 115 tokens/s with it and 174 without, and a 125M Llama
  // decoded 8 rows at 95 tokens/s and 160. A user's own setting stays.
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  execv(program.c_str(), args.data());
  spdlog::error("cannot run {}: {}", program, std::strerror(errno));
  return 2;
}


}  // namespace blockc
