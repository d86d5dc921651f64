// Llama 3.2 Vision: transformers' configuration_mllama.py (MllamaConfig, MllamaTextConfig,
// MllamaVisionConfig) and modeling_mllama.py for the names.
#include "framework/hf/mllama.h"

#include <algorithm>
#include <set>

#include "framework/hf/keys.h"

namespace blocks::hf {

using config::Diagnostics;
using config::Json;
using config::Node;

namespace {

// MllamaVisionConfig's fields that shape the vision tower's output, and their defaults.
struct MllamaVision {
  int64_t image_size = 448, patch_size = 14, vision_output_dim = 7680, max_num_tiles = 4;
};

// Where a problem of `key` below `field` belongs.
std::string at(const std::string& field, const std::string& key) {
  return "hf." + (field.empty() ? "" : field + ".") + key;
}

bool read_int(const Node& mapping, const std::string& field, const std::string& key,
              int64_t& out, Diagnostics& d) {
  const Node* v = mapping.find(key);
  if (!v) return false;
  return parse(*v, at(field, key), d, out);
}

void append_below(Diagnostics& into, const Diagnostics& from, const std::string& field) {
  for (const auto& item : from.items()) {
    std::string path = item.path;
    if (path == "hf" || path.rfind("hf.", 0) == 0) path = "hf." + field + path.substr(2);
    into.error(item.mark, path, item.message);
  }
}

const std::set<std::string>& irrelevant_top_keys() {
  static const std::set<std::string> keys = {
      "_name_or_path", "_commit_hash", "transformers_version", "torch_dtype", "dtype",
      "architectures", "use_cache", "return_dict", "output_hidden_states", "output_attentions",
      "torchscript", "use_bfloat16", "attn_implementation", "_attn_implementation",
      "pad_token_id", "bos_token_id", "eos_token_id", "tokenizer_class", "model_type",
      "text_config", "vision_config", "image_token_index", "image_token_id",
      "tie_word_embeddings"};
  return keys;
}

}  // namespace

std::vector<int64_t> fusion_positions(const std::vector<int64_t>& cross) {
  std::vector<int64_t> out;
  std::vector<int64_t> sorted = cross;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) out.push_back(sorted[i] - static_cast<int64_t>(i));
  return out;
}

std::optional<Json> convert_mllama(const Node& hf, Diagnostics& d, const TextConverter& text,
                                   std::vector<std::string>* defaults) {
  Diagnostics problems;
  for (const auto& e : hf.entries)
    if (!irrelevant_top_keys().count(e.key))
      problems.error(e.value.mark, "hf." + e.key,
                     "not a known mllama key; it may change the architecture, so it is not "
                     "dropped");
  int64_t image_token = 128256;
  read_int(hf, "", "image_token_index", image_token, problems);

  // The vision tower is not modelled; what its output looks like is.
  MllamaVision v;
  const Node* vision = hf.find("vision_config");
  if (vision && vision->is_mapping()) {
    read_int(*vision, "vision_config", "image_size", v.image_size, problems);
    read_int(*vision, "vision_config", "patch_size", v.patch_size, problems);
    read_int(*vision, "vision_config", "vision_output_dim", v.vision_output_dim, problems);
    read_int(*vision, "vision_config", "max_num_tiles", v.max_num_tiles, problems);
  } else if (vision && !vision->is_null()) {
    problems.error(vision->mark, "hf.vision_config", "must be an object, found " + vision->describe());
  }
  if (defaults)
    for (const char* key : {"image_size", "patch_size", "vision_output_dim"})
      if (!vision || !vision->is_mapping() || !vision->find(key))
        defaults->push_back(std::string("vision_config ") + key + ": " +
                            std::to_string(key[0] == 'i'   ? v.image_size
                                           : key[0] == 'p' ? v.patch_size
                                                           : v.vision_output_dim) +
                            " (MllamaVisionConfig)");
  if (v.patch_size <= 0 || v.image_size % v.patch_size != 0)
    problems.error(vision ? vision->mark : hf.mark, "hf.vision_config.image_size",
                   "image_size " + std::to_string(v.image_size) +
                       " is not a multiple of patch_size " + std::to_string(v.patch_size));
  const int64_t side = v.patch_size > 0 ? v.image_size / v.patch_size : 0;
  const int64_t tile_tokens = side * side + 1;  // MllamaVisionModel: patches and a class token

  // The text side: a llama config.json of its self-attention layers.
  const Node* text_config = hf.find("text_config");
  std::optional<Json> decoder;
  std::vector<int64_t> cross;
  if (!text_config || !text_config->is_mapping()) {
    problems.error(text_config ? text_config->mark : hf.mark, "hf.text_config",
                   "must be an object (MllamaTextConfig)");
  } else {
    Node llama = *text_config;
    const Node* type = llama.find("model_type");
    if (type && !(type->is_scalar() && type->text == "mllama_text_model"))
      problems.error(type->mark, "hf.text_config.model_type",
                     "must be mllama_text_model, found " + type->describe());
    llama.set("model_type", Node::scalar("llama", true, llama.mark));
    const Node* layers = llama.find("cross_attention_layers");
    if (!layers || !layers->is_sequence() || layers->items.empty()) {
      problems.error(layers ? layers->mark : llama.mark, "hf.text_config.cross_attention_layers",
                     "must list the cross-attention layers (a model without them is a llama)");
    } else {
      for (const auto& item : layers->items) {
        int64_t n = 0;
        if (parse(item, "hf.text_config.cross_attention_layers", problems, n)) cross.push_back(n);
      }
    }
    int64_t total = 40;  // MllamaTextConfig's num_hidden_layers
    read_int(llama, "text_config", "num_hidden_layers", total, problems);
    std::set<int64_t> seen;
    bool listed_well = true;
    for (int64_t c : cross)
      if (c < 0 || c >= total || !seen.insert(c).second)
        listed_well = false,
        problems.error(layers->mark, "hf.text_config.cross_attention_layers",
                       "layer " + std::to_string(c) + " is " +
                           (c < 0 || c >= total ? "not among the " + std::to_string(total) +
                                                      " layers"
                                                : "listed twice"));
    const std::vector<int64_t> places = fusion_positions(cross);
    const int64_t self_layers = total - static_cast<int64_t>(cross.size());
    for (size_t i = 0; listed_well && i < places.size(); ++i) {
      if (i > 0 && places[i] == places[i - 1])
        problems.error(layers->mark, "hf.text_config.cross_attention_layers",
                       "cross-attention layers " + std::to_string(cross[i - 1]) + " and " +
                           std::to_string(cross[i]) +
                           " follow each other: blocks puts one fusion layer before a decoder "
                           "layer");
      if (places[i] >= self_layers)
        problems.error(layers->mark, "hf.text_config.cross_attention_layers",
                       "cross-attention layer " + std::to_string(cross[i]) +
                           " comes after the last self-attention layer: blocks puts fusion "
                           "layers before a decoder layer");
    }
    llama.set("num_hidden_layers", Node::scalar(std::to_string(self_layers), false, llama.mark));
    llama.erase("cross_attention_layers");
    if (const Node* dropout = llama.find("dropout")) {
      double p = 0;
      if (parse(*dropout, "hf.text_config.dropout", problems, p) && p != 0)
        problems.error(dropout->mark, "hf.text_config.dropout",
                       "MllamaTextConfig keeps it for checkpoints only (no layer reads it); a "
                       "non-zero value is not converted");
      llama.erase("dropout");
    }
    Diagnostics text_problems;
    decoder = text(llama, text_problems);
    append_below(problems, text_problems, "text_config");
  }
  d.append(problems);
  if (!problems.ok() || !decoder) return std::nullopt;

  Json model = (*decoder)["model"];
  // Evenly spaced layers N-1, 2N-1, ... through the last are `every: N`, as a person writes it.
  const std::vector<int64_t> places = fusion_positions(cross);
  const auto self_layers = model["decoder"]["num_layers"].get<int64_t>();
  const int64_t every = places.empty() ? 0 : places[0] + 1;
  bool even = every > 0 && self_layers % every == 0 &&
              static_cast<int64_t>(places.size()) == self_layers / every;
  for (size_t i = 0; even && i < places.size(); ++i)
    even = places[i] == (static_cast<int64_t>(i) + 1) * every - 1;
  const int64_t vocab = model["embeddings"]["vocab_size"].get<int64_t>();
  if (image_token < vocab || image_token >= vocab + 8) {
    d.error(hf.find("image_token_index") ? hf.find("image_token_index")->mark : hf.mark,
            "hf.image_token_index",
            "token " + std::to_string(image_token) + " is not among the 8 rows embed_tokens "
            "has past vocab_size " + std::to_string(vocab));
    return std::nullopt;
  }
  const Json& block = model["decoder"]["block"];
  const Json& mixer = block["mixer"];
  Json attention = {{"heads", mixer["heads"]}, {"qk_norm", block["normalization"]}};
  if (mixer.contains("head_groups")) attention["head_groups"] = mixer["head_groups"];
  if (mixer.contains("head_size")) attention["head_size"] = mixer["head_size"];
  Json gated = {{"type", "gated_cross_attention"},
                {"attention", attention},
                {"mlp", block["mlp"]},
                {"normalization", block["normalization"]},
                {"unattended_rows", "skip_mlp"}};
  if (model.contains("add_linear_biases")) gated["add_linear_biases"] = model["add_linear_biases"];
  Json fusion = {{"type", "deep_fusion"},
                 {"decoder", model},
                 {"encoder",
                  {{"encoder",
                    {{"type", "features"},
                     {"width", v.vision_output_dim},
                     {"tokens", tile_tokens},
                     {"input", "vision_features"}}},
                   {"connectors", Json::array({{{"type", "linear"}, {"bias", true}}})}}},
                 {"fusion_layers", {{"placement", "before"}, {"block", gated}}},
                 {"fusion_vocab_size", 8}};
  if (even)
    fusion["fusion_layers"]["every"] = every;
  else
    fusion["fusion_layers"]["layers"] = places;
  return Json{{"version", 1}, {"model", fusion}};
}

std::vector<TensorName> mllama_names(const Json& model, std::vector<std::string>* notes) {
  const std::vector<int64_t> places =
      model["fusion_layers"]["at"].get<std::vector<int64_t>>();
  const int64_t self_layers = model["decoder"]["decoder"]["num_layers"].get<int64_t>();
  const int64_t vocab = model["decoder"]["embeddings"]["vocab_size"].get<int64_t>();
  const int64_t extra = model["fusion_vocab_size"].get<int64_t>();
  std::vector<TensorName> out;
  // On-disk layout first: export and messages use the first rule's names.
  for (const bool disk : {true, false}) {
    const std::string text = disk ? R"(language_model\.model\.)" : R"(model\.language_model\.)";
    const std::string top = disk ? "" : R"(model\.)";
    TensorName embeddings{text + R"(embed_tokens\.weight)",
                          {"decoder.embeddings.word.weight", "fusion_embedding.weight"}};
    embeddings.split_sizes = {vocab, extra};
    out.push_back(embeddings);
    out.push_back({text + R"(norm\.weight)", {"decoder.head.normalization.weight"}});
    out.push_back({disk ? R"(language_model\.lm_head\.weight)" : R"(lm_head\.weight)",
                   {"decoder.head.output.weight"}});
    out.push_back({top + R"(multi_modal_projector\.(weight|bias))",
                   {"encoder.connectors.0.projection.$1"}});
    out.push_back({top + R"(vision_model\..*)", {}});
    // transformers' layer h: self-attention layer h - (cross layers before it), or the fusion
    // layer before the decoder layer that follows it.
    int64_t h = 0;
    size_t next_cross = 0;
    for (int64_t i = 0; i <= self_layers; ++i) {
      if (next_cross < places.size() && places[next_cross] == i) {
        const std::string l = text + R"(layers\.)" + std::to_string(h) + R"(\.)";
        const std::string f = "fusion_layers." + std::to_string(i) + ".";
        for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
                 {R"(input_layernorm\.weight)", "normalization.weight"},
                 {R"(cross_attn\.q_proj\.weight)", "attention.query.weight"},
                 {R"(cross_attn\.k_proj\.weight)", "attention.key.weight"},
                 {R"(cross_attn\.v_proj\.weight)", "attention.value.weight"},
                 {R"(cross_attn\.o_proj\.weight)", "attention.output.weight"},
                 {R"(cross_attn\.q_norm\.weight)", "attention.qk_norm.0.weight"},
                 {R"(cross_attn\.k_norm\.weight)", "attention.qk_norm.1.weight"},
                 {R"(cross_attn_attn_gate)", "attention_gate.weight"},
                 {R"(cross_attn_mlp_gate)", "mlp_gate.weight"},
                 {R"(post_attention_layernorm\.weight)", "mlp_normalization.weight"},
                 {R"(mlp\.gate_proj\.weight)", "mlp.gate.weight"},
                 {R"(mlp\.up_proj\.weight)", "mlp.up.weight"},
                 {R"(mlp\.down_proj\.weight)", "mlp.down.weight"}})
          out.push_back({l + from, {f + to}});
        ++h;
        ++next_cross;
      }
      if (i == self_layers) break;
      const std::string l = text + R"(layers\.)" + std::to_string(h) + R"(\.)";
      const std::string s = "decoder.decoder." + std::to_string(i) + ".";
      for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
               {R"(input_layernorm\.weight)", "normalization.weight"},
               {R"(self_attn\.q_proj\.weight)", "mixer.query.weight"},
               {R"(self_attn\.k_proj\.weight)", "mixer.key.weight"},
               {R"(self_attn\.v_proj\.weight)", "mixer.value.weight"},
               {R"(self_attn\.o_proj\.weight)", "mixer.output.weight"},
               {R"(post_attention_layernorm\.weight)", "mlp_normalization.weight"},
               {R"(mlp\.gate_proj\.weight)", "mlp.gate.weight"},
               {R"(mlp\.up_proj\.weight)", "mlp.up.weight"},
               {R"(mlp\.down_proj\.weight)", "mlp.down.weight"}})
        out.push_back({l + from, {s + to}});
      ++h;
    }
  }
  if (notes)
    notes->push_back("vision_model.*: skipped; blocks does not model the tiled vision tower, "
                     "whose output is the input vision_features");
  return out;
}

}  // namespace blocks::hf
