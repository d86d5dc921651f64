#include "tools/blockc/model_cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "framework/hf/family.h"

namespace blockc {

void add_model_commands(CLI::App& app, ModelCommands& c) {
  c.summary = app.add_subcommand(
      "summary", "Module tree with parameter counts, lr scales, bytes and FLOPs (no weights made)");
  c.summary->add_option("file", c.args.model, "Config file")->required();
  c.summary->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)");
  c.summary->add_option("--depth", c.args.depth, "Config-path levels to show (default 4)")
      ->check(CLI::Range(0, 32));
  c.summary->add_option("--context", c.args.context, "Sequence length for FLOPs (default 2048)")
      ->check(CLI::PositiveNumber);

  c.init = app.add_subcommand("init", "Initialize a model from its config and save it");
  c.init->add_option("file", c.args.model, "Config file")->required();
  c.init->add_option("-o,--output", c.args.output, "safetensors file to write")->required();
  c.init->add_option("--seed", c.args.seed, "Random seed (default 0)");
  c.init->add_option("--dtype", c.args.dtype, "float32, bfloat16, float16 or float64");
  c.init->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)");

  c.forward = app.add_subcommand("forward", "Run a model on token ids and save the logits");
  c.forward
      ->add_option("--model", c.args.model,
                   "blocks YAML, or a Hugging Face folder (config.json + safetensors)")
      ->required();
  c.forward->add_option("--weights", c.args.weights,
                        "safetensors in blocks' names, or in --map's, or a Hugging Face folder "
                        "(its family's names); config.json or init's blocks_config metadata is "
                        "checked against the model's architecture (repeatable)");
  c.forward->add_option("--map", c.args.map, "YAML name mapping for --weights (rules from/to)");
  c.forward->add_option("--seed", c.args.seed, "Random weights from this seed instead of --weights");
  c.forward->add_option("--input", c.args.input,
                        "safetensors of the model's inputs by name: `tokens` (or `input_ids`) "
                        "int64 [batch, seq], optional `attention_mask`, `positions`, ...")
      ->required();
  c.forward->add_option("--output", c.args.output, "safetensors to receive `logits`")->required();
  c.forward->add_option("--hidden-state", c.args.hidden_states,
                        "Also write this hidden state as `hidden.NAME` (embeddings, decoder.N, "
                        "decoder; repeatable)");
  c.forward->add_option("--dtype", c.args.dtype, "float32, bfloat16, float16 or float64");
  c.forward->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)");

  c.export_ = app.add_subcommand(
      "export", "Save a model's weights in blocks' names or as a Hugging Face folder");
  c.export_
      ->add_option("--model", c.args.model,
                   "blocks YAML, or a Hugging Face folder (config.json + safetensors)")
      ->required();
  c.export_->add_option("--weights", c.args.weights,
                        "safetensors in blocks' names, or in --map's, or a Hugging Face folder; "
                        "checked against the model's architecture as forward does (repeatable)");
  c.export_->add_option("--map", c.args.map, "YAML name mapping for --weights (rules from/to)");
  c.export_->add_option("--seed", c.args.seed,
                        "Random weights from this seed instead of --weights");
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
      ->check(CLI::PositiveNumber);
  c.export_->add_option("--max-shard-size", c.args.max_shard_size,
                        "--to hf: largest shard, e.g. 5GB or 500MB (default 5GB); more than one "
                        "shard adds model.safetensors.index.json");
  c.export_->add_option("-o,--output", c.args.output, "file (--to blocks) or folder (--to hf)")
      ->required();
  c.export_->add_flag("--replace", c.args.replace,
                      "--to hf: write into a folder that is not empty, replacing the checkpoint "
                      "in it (its other files stay)");
  c.export_->add_option("--dtype", c.args.dtype,
                        "float32, bfloat16, float16 or float64 (default: the checkpoint's)");
  c.export_->add_option("--set", c.args.sets, "Override PATH=VALUE (repeatable)");
}

void set_up_logging() {
  spdlog::set_default_logger(spdlog::stderr_color_mt("blockc"));
  spdlog::set_pattern("blockc: %l: %v");
}

std::optional<int> parse(CLI::App& app, int argc, char** argv, const bool& verbose) {
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
  execv(program.c_str(), args.data());
  spdlog::error("cannot run {}: {}", program, std::strerror(errno));
  return 2;
}


}  // namespace blockc
