// Test support: small valid models around the piece a test changes, resolved through the
// real loader, and text edits that fail the test when their anchor is missing.
#pragma once

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "blocks/registry.h"
#include "framework/config/document.h"

namespace blocks::testing {

struct ModelText {
  std::string mixer = "{type: attention, rotary: {type: none}, heads: 4}";     // "": a block without a mixer
  std::string mlp = "{type: gated, intermediate_size: 128}";  // "": a block without an MLP
  std::string normalization = "{type: rms_norm}";
  std::string block_extra;  // more `key: value` lines of the block, indented by 6
  std::string model_extra;  // more lines of the model, indented by 2
  int hidden_size = 64;
  int layers = 2;

  std::string text() const {
    auto line = [](const char* key, const std::string& value) {
      return value.empty() ? std::string() : "      " + std::string(key) + ": " + value + "\n";
    };
    return "version: 1\nmodel:\n  type: language_model\n  hidden_size: " +
           std::to_string(hidden_size) + "\n  embeddings: {vocab_size: 100}\n" + model_extra +
           "  decoder:\n    type: repeat\n    num_layers: " + std::to_string(layers) +
           "\n    block:\n      type: transformer\n" + line("mixer", mixer) + line("mlp", mlp) +
           "      normalization: " + normalization + "\n" + block_extra +
           "  head:\n    normalization: {type: rms_norm}\n";
  }
};

// `text` with the first `from` replaced by `to`; a missing `from` fails the test.
inline std::string replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// A config of the zoo (configs/NAME.yaml) or a text, loaded and resolved; an invalid one
// throws, which fails the test with every diagnostic.
inline config::Document zoo(const std::string& name, const config::LoadOptions& options = {}) {
  config::Diagnostics d;
  auto doc =
      config::load_document(BLOCKS_SOURCE_DIR "/configs/" + name + ".yaml", registry(), d, options);
  if (!doc) throw std::runtime_error(name + ": " + d.format());
  return std::move(*doc);
}

inline config::Document document(const std::string& text, const std::string& name = "test.yaml") {
  config::Diagnostics d;
  auto doc = config::load_document_text(text, name, registry(), d);
  if (!doc) throw std::runtime_error(name + ": " + d.format());
  return std::move(*doc);
}

// The resolved dump of `text`; fails the test (and returns null) on any diagnostic.
inline config::Json resolved(const std::string& text) {
  config::Diagnostics d;
  auto doc = config::load_document_text(text, "test.yaml", registry(), d);
  EXPECT_TRUE(doc) << d.format() << "\n" << text;
  return doc ? doc->dump() : config::Json();
}

// Every diagnostic of `text`, formatted and sorted; "" when it is valid. A document must come
// back exactly when there is no diagnostic.
inline std::string errors(const std::string& text) {
  config::Diagnostics d;
  auto doc = config::load_document_text(text, "test.yaml", registry(), d);
  EXPECT_EQ(doc.has_value(), d.ok()) << "a document must be returned exactly when valid";
  return d.format();
}

inline const config::Json& block_of(const config::Json& doc) {
  return doc["model"]["decoder"]["block"];
}

}  // namespace blocks::testing
