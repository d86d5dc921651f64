// blockc: the command-line face of blocks. Parses arguments, calls the library, prints.
// Exit codes: 0 success, 1 invalid input, 2 usage error.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "blocks/registry.h"
#include "framework/config/diff.h"
#include "framework/config/document.h"
#include "framework/config/emit.h"
#include "framework/config/resolve.h"
#include "framework/config/schema.h"
#include "framework/graph/graph.h"
#include "framework/graph/render.h"
#include "framework/hf/config.h"
#include "framework/hf/family.h"
#include "framework/io/files.h"
#include "tools/blockc/error_boundary.h"
#include "tools/blockc/model_cli.h"
#include "tools/blockc/plot_command.h"
#include "tools/blockc/prepare_command.h"
#include "tools/blockc/tokenize_command.h"

namespace {

using namespace blocks::config;

// stdout for "" or "-" (its write errors end in the error boundary), else one atomic write.
int write_output(const std::string& text, const std::string& path) {
  if (path.empty() || path == "-")
    std::cout << text;
  else
    blocks::io::write_file(path, text);
  return 0;
}

std::optional<Document> load(const std::string& path, const std::vector<std::string>& sets,
                             int64_t max_layers) {
  Diagnostics diagnostics;
  LoadOptions options;
  options.sets = sets;
  options.limits.max_layers = max_layers;
  auto doc = load_document(path, blocks::registry(), diagnostics, options);
  std::cerr << diagnostics.format();
  return doc;
}

// The --expand paths that name no config of the model (they were silently ignored), as one
// message with a suggestion; "" when all exist.
std::string unknown_expands(Config& model, const std::vector<std::string>& expand) {
  std::vector<std::string> paths;
  for_each_config(model, "model", [&](Config&, const std::string& path) { paths.push_back(path); });
  for (const auto& path : expand) {
    if (std::find(paths.begin(), paths.end(), path) != paths.end()) continue;
    std::string message = "--expand '" + path + "' names no config of the model";
    if (auto guess = did_you_mean(path, paths)) message += "; did you mean '" + *guess + "'?";
    return message;
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  blockc::set_up_logging();

  CLI::App app{"blockc: validate, resolve and inspect blocks model configs"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Debug logging on stderr");

  std::vector<std::string> files;
  std::vector<std::string> sets;
  int64_t max_layers = LoadLimits{}.max_layers;
  std::string format = "yaml";
  std::string output;
  std::string name;
  bool markdown = false;

  auto* validate = app.add_subcommand("validate", "Check config files; every problem is reported");
  validate->add_option("files", files, "Config files")->required();
  validate->add_option("--set", sets, "Override PATH=VALUE (repeatable)")
      ->check(blockc::set_assignment());

  auto* resolve = app.add_subcommand("resolve", "Print the fully explicit config");
  resolve->add_option("file", files, "Config file")->required()->expected(1);
  resolve->add_option("--format", format, "yaml or json")->check(CLI::IsMember({"yaml", "json"}));
  resolve->add_option("--set", sets, "Override PATH=VALUE (repeatable)")
      ->check(blockc::set_assignment());
  resolve->add_option("-o,--output", output, "Write here instead of stdout");

  auto* schema = app.add_subcommand("schema", "Print the JSON Schema of the config language");
  schema->add_option("-o,--output", output, "Write here instead of stdout");

  auto* explain_cmd = app.add_subcommand("explain", "Describe kinds, types and their fields");
  explain_cmd->add_option("name", name, "A kind or type name; none: the overview");
  explain_cmd->add_flag("--markdown", markdown, "The whole reference as Markdown");
  explain_cmd->add_option("-o,--output", output, "Write here instead of stdout");

  int depth = 3;
  std::vector<std::string> expand;
  auto* diagram = app.add_subcommand("diagram", "Draw the architecture (DOT, SVG or Mermaid)");
  diagram->add_option("file", files, "Config file")->required()->expected(1);
  diagram->add_option("--format", format, "dot, svg or mermaid")
      ->check(CLI::IsMember({"dot", "svg", "mermaid"}));
  diagram
      ->add_option("--depth", depth,
                   "1: the model's parts, 2: blocks, 3: sub-layers, 4: linears (default 3)")
      ->check(CLI::Range(1, 8));
  diagram->add_option("--expand", expand, "Draw this config path in full (repeatable)");
  diagram->add_option("--set", sets, "Override PATH=VALUE (repeatable)")
      ->check(blockc::set_assignment());
  diagram->add_option("-o,--output", output, "Write here instead of stdout");

  auto* diff_cmd = app.add_subcommand("diff", "Differences of two resolved configs");
  diff_cmd->add_option("files", files, "Two config files")->required()->expected(2);
  diff_cmd->add_option("--set", sets, "Override PATH=VALUE in both (repeatable)")
      ->check(blockc::set_assignment());

  std::string hf_path;
  auto* import_cmd = app.add_subcommand("import", "Convert a foreign model config to blocks YAML");
  import_cmd->require_subcommand(1);
  auto* import_hf = import_cmd->add_subcommand(
      "hf", "A Hugging Face config.json (or its folder) of the families " +
                blocks::hf::family_list(" or ") +
                ", or a llava, mllama, clip or clip_vision_model one (a vision tower alone "
                "becomes an encoder_model; mllama a deep_fusion model that takes its vision "
                "tower's output)");
  import_hf->add_option("path", hf_path, "config.json or a folder holding one")->required();
  import_hf->add_option("-o,--output", output,
                        "Write here instead of stdout; inside a blocks checkout the file's "
                        "$schema line points at its schemas/blocks.schema.json");

  for (CLI::App* command : {validate, resolve, diagram, diff_cmd})
    blockc::add_max_layers(*command, max_layers);

  blockc::ModelCommands model;
  blockc::add_model_commands(app, model);
  blockc::PlotCommand plot;
  blockc::add_plot_command(app, plot);
  blockc::PrepareCommand prepare;
  blockc::add_prepare_command(app, prepare);
  blockc::TokenizeCommand tokenize;
  blockc::add_tokenize_command(app, tokenize);

  if (auto code = blockc::parse(app, argc, argv, verbose)) return *code;
  // Commands that build models run in blockc-model, beside this program, so that validate,
  // resolve and the rest never load LibTorch (which costs ~0.8 s and 160 MB at startup).
  if (model.parsed()) return blockc::exec_model_program(argc, argv);
  // One error boundary: whatever a command throws ends as one message and an exit code.
  return blockc::guarded([&] {
    // Before any work: a bad output path is found in milliseconds, not after a long run.
    if (!output.empty() && output != "-") blocks::io::check_output(output);
    const auto& registry = blocks::registry();

    if (validate->parsed()) {
      int status = 0;
      for (const auto& file : files) {
        spdlog::debug("validating {}", file);
        if (!load(file, sets, max_layers)) status = 1;
      }
      if (status == 0) spdlog::debug("{} file(s) valid", files.size());
      return status;
    }
    if (resolve->parsed()) {
      auto doc = load(files[0], sets, max_layers);
      if (!doc) return 1;
      const Json json = doc->dump();
      return write_output(format == "json" ? to_json(json) : to_yaml(json), output);
    }
    if (schema->parsed()) return write_output(json_schema(registry).dump(2) + "\n", output);
    if (explain_cmd->parsed()) {
      if (markdown) return write_output(reference_markdown(registry), output);
      if (name.empty()) return write_output(explain_all(registry), output);
      std::string text = explain(registry, name);
      if (text.empty()) {
        std::vector<std::string> names;
        for (const auto* k : registry.kinds()) names.push_back(k->name);
        for (const auto* t : registry.all_types()) names.push_back(t->name);
        std::string message = "unknown kind or type '" + name + "'";
        if (auto guess = did_you_mean(name, names)) message += "; did you mean '" + *guess + "'?";
        spdlog::error("{}", message);
        return 2;
      }
      return write_output(text, output);
    }
    if (diagram->parsed()) {
      if (format == "yaml") format = "svg";
      auto doc = load(files[0], sets, max_layers);
      if (!doc) return 1;
      if (const std::string problem = unknown_expands(*doc->model, expand); !problem.empty()) {
        spdlog::error("{}", problem);
        return 2;
      }
      blocks::graph::Options options;
      options.depth = depth;
      options.expand = expand;
      const auto graph = blocks::graph::build_graph(*doc->model, options);
      if (format == "mermaid") return write_output(blocks::graph::to_mermaid(graph), output);
      const std::string dot = blocks::graph::to_dot(graph, files[0]);
      if (format == "dot") return write_output(dot, output);
      std::string error;
      auto svg = blocks::graph::to_svg(dot, error);
      if (!svg) {
        spdlog::error("{}", error);
        return 1;
      }
      return write_output(*svg, output);
    }
    if (prepare.parsed()) return blockc::run_prepare(prepare);
    if (tokenize.parsed()) return blockc::run_tokenize(tokenize);
    if (plot.parsed()) return blockc::run_plot(plot);
    if (import_hf->parsed()) {
      Diagnostics diagnostics;
      // The $schema line is relative to where the file lands; stdout lands anywhere: none.
      const bool to_file = !output.empty() && output != "-";
      const std::string schema =
          to_file ? blocks::hf::schema_reference(output).value_or("") : std::string();
      const auto yaml = blocks::hf::import_yaml(hf_path, diagnostics, schema);
      // Never write what `blockc validate` would refuse: the converted text is checked as a
      // config first.
      if (yaml && !load_document_text(*yaml, hf_path + " (converted)", registry, diagnostics)) {
        std::cerr << diagnostics.format();
        spdlog::error("{}: the converted config is not valid; nothing was written", hf_path);
        return 1;
      }
      std::cerr << diagnostics.format();
      return yaml ? write_output(*yaml, output) : 1;
    }
    if (diff_cmd->parsed()) {
      auto a = load(files[0], sets, max_layers);
      auto b = load(files[1], sets, max_layers);
      if (!a || !b) return 1;
      std::cout << format_diff(diff(*a, *b));
      return 0;
    }
    return 2;
  });
}
