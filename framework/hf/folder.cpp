// Hugging Face folders without LibTorch: config.json, converted and compared.
#include "framework/hf/folder.h"

#include <filesystem>

#include "framework/config/diff.h"
#include "framework/config/load.h"
#include "framework/hf/config.h"

namespace blocks::hf {

bool is_folder(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) &&
         std::filesystem::exists(std::filesystem::path(path) / "config.json", ec);
}

std::string config_path(const std::string& folder) {
  return (std::filesystem::path(folder) / "config.json").string();
}

std::optional<std::string> config_value(const std::string& folder, const std::string& key) {
  config::Diagnostics diagnostics;
  auto raw = config::load_file(config_path(folder), diagnostics);
  const config::Node* n = raw && raw->is_mapping() ? raw->find(key) : nullptr;
  if (!n || !n->is_scalar()) return std::nullopt;
  return n->text;
}

std::optional<config::Document> folder_document(const std::string& folder,
                                                const config::Registry& registry,
                                                config::Diagnostics& diagnostics,
                                                const config::LoadOptions& options) {
  auto yaml = import_yaml(folder, diagnostics);
  if (!yaml) return std::nullopt;
  return config::load_document_text(*yaml, config_path(folder), registry, diagnostics, options);
}

std::string architecture_differences(const config::Document& model,
                                     const config::Document& checkpoint) {
  std::string listed;
  for (const auto& d : config::diff(model, checkpoint)) {
    if (d.hint != config::Hint::architecture) continue;
    listed += "\n  " + d.path + ": model " + (d.only_after ? "(absent)" : d.before.dump()) +
              ", checkpoint " + (d.only_before ? "(absent)" : d.after.dump());
  }
  return listed;
}

}  // namespace blocks::hf
