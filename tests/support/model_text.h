// Test support: small valid models around the piece a test changes, resolved through the
// real loader, and text edits that fail the test when their anchor is missing.
#pragma once

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "blocks/models/language_model.h"
#include "blocks/registry.h"
#include "blocks/sequences/repeat.h"
#include "blocks/sequences/transformer.h"
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

// A 2-layer CLIP-style tower on 8x8 images of 4x4 patches without its class token (4 features
// an image, 16 wide), as the `encoder:` entry of a fusion model, every line indented by `indent`.
inline std::string tiny_vit_encoder(int indent) {
  const std::string lines[] = {"encoder:",
                               "  type: vision_transformer",
                               "  hidden_size: 16",
                               "  image_size: 8",
                               "  patch_size: 4",
                               "  body:",
                               "    type: repeat",
                               "    num_layers: 2",
                               "    block:",
                               "      type: transformer",
                               "      mixer: {type: attention, heads: 2, causal: false}",
                               "      mlp: {type: mlp, intermediate_size: 32}",
                               "      normalization: {type: layer_norm}",
                               "  drop_class_token: true"};
  std::string out;
  for (const auto& line : lines) out += std::string(static_cast<size_t>(indent), ' ') + line + "\n";
  return out;
}

// A tiny LLaVA: tiny_vit_encoder under a linear projector, its 4 features a run of placeholder
// 63, into a 2-layer decoder (32 wide) of 64 ids; `extra` lines of the model follow, indented by 2.
inline std::string tiny_llava_text(const std::string& extra = "") {
  return "version: 1\n"
         "model:\n"
         "  type: early_fusion\n"
         "  decoder:\n"
         "    type: language_model\n"
         "    hidden_size: 32\n"
         "    embeddings: {vocab_size: 64}\n"
         "    decoder:\n"
         "      type: repeat\n"
         "      num_layers: 2\n"
         "      block:\n"
         "        type: transformer\n"
         "        mixer: {type: attention, heads: 4, rotary: {type: default}}\n"
         "        mlp: {type: gated, intermediate_size: 64}\n"
         "        normalization: {type: rms_norm}\n"
         "    head: {normalization: {type: rms_norm}}\n"
         "  encoders:\n"
         "    image:\n" +
         tiny_vit_encoder(6) +
         "      connectors:\n"
         "        - {type: linear}\n"
         "  encoder_tokens: {image: 63}\n" + extra;
}

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

// The parts of a document whose model is a language model over a `repeat` of transformers.
inline const LanguageModelConfig& model_of(const config::Document& doc) {
  return dynamic_cast<const LanguageModelConfig&>(*doc.model);
}
inline const RepeatSequenceConfig& decoder_of(const config::Document& doc) {
  return *model_of(doc).decoder.as<RepeatSequenceConfig>();
}
inline const TransformerConfig& block_of(const config::Document& doc) {
  return *decoder_of(doc).block.as<TransformerConfig>();
}

// A pattern [a, s, a, s] of two identical transformer blocks where `s` is shared: its one set
// of weights serves positions 1 and 3 (remove the `shared` line for separate weights).
inline std::string shared_pattern_model() {
  const std::string block =
      "        type: transformer\n"
      "        mixer: {type: attention, heads: 4, rotary: {type: none}}\n"
      "        mlp: {type: gated, intermediate_size: 128}\n"
      "        normalization: {type: rms_norm}\n";
  return "version: 1\nmodel:\n  type: language_model\n  hidden_size: 64\n"
         "  embeddings: {vocab_size: 100}\n  decoder:\n    type: pattern\n"
         "    pattern: [a, s, a, s]\n    shared: [s]\n    blocks:\n      a:\n" +
         block + "      s:\n" + block + "  head:\n    normalization: {type: rms_norm}\n";
}

}  // namespace blocks::testing
