// LLaVA: transformers' configuration_llava.py (LlavaConfig), configuration_clip.py
// (CLIPVisionConfig) and modeling_llava.py / modeling_clip.py for the names.
#include "framework/hf/llava.h"

#include <map>

#include "framework/config/load.h"
#include "framework/hf/config.h"
#include "framework/hf/folder.h"
#include "framework/hf/keys.h"

namespace blocks::hf {

using config::Diagnostics;
using config::Json;
using config::Node;

namespace {

// CLIPVisionConfig's fields and defaults.
struct ClipVision {
  int64_t hidden_size = 768, intermediate_size = 3072, num_hidden_layers = 12,
          num_attention_heads = 12, num_channels = 3, image_size = 224, patch_size = 32;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5, attention_dropout = 0.0;
};

// LlavaConfig's own fields and defaults.
struct Llava {
  int64_t image_token_index = 32000;
  std::string projector_hidden_act = "gelu";
  std::string vision_feature_select_strategy = "default";
  std::vector<int64_t> vision_feature_layer = {-2};
  bool multimodal_projector_bias = true;
  std::optional<int64_t> image_seq_length;
  const Node* text_config = nullptr;
  const Node* vision_config = nullptr;
};

template <class T>
BasicKey<T> ignored(std::string key, std::string why) {
  return {std::move(key), nullptr, nullptr, std::move(why)};
}

template <class T, class V>
BasicKey<T> value(std::string key, V T::*member, std::string note) {
  return {std::move(key), to(member), nullptr, std::move(note)};
}

template <class T>
BasicKey<T> positive(std::string key, int64_t T::*member, std::string note) {
  return {std::move(key), count(member), nullptr, std::move(note)};
}

template <class T>
std::vector<BasicKey<T>> provenance_keys() {
  std::vector<BasicKey<T>> keys;
  for (const char* k : {"_name_or_path", "_commit_hash", "transformers_version", "torch_dtype",
                        "dtype", "architectures", "use_cache", "return_dict",
                        "output_hidden_states", "output_attentions", "torchscript",
                        "use_bfloat16", "attn_implementation", "_attn_implementation"})
    keys.push_back(ignored<T>(k, "provenance, storage precision or how transformers runs"));
  for (const char* k : {"pad_token_id", "bos_token_id", "eos_token_id", "id2label", "label2id",
                        "problem_type", "task_specific_params", "tokenizer_class"})
    keys.push_back(ignored<T>(k, "tokenizer, generation or task-head settings"));
  return keys;
}

std::vector<BasicKey<ClipVision>> clip_keys() {
  using C = ClipVision;
  auto keys = provenance_keys<C>();
  const std::vector<BasicKey<C>> own = {
      ignored<C>("model_type", "clip_vision_model (checked)"),
      positive<C>("hidden_size", &C::hidden_size, "encoder hidden_size"),
      positive<C>("intermediate_size", &C::intermediate_size, "mlp intermediate_size"),
      positive<C>("num_hidden_layers", &C::num_hidden_layers, "encoder num_layers"),
      positive<C>("num_attention_heads", &C::num_attention_heads, "mixer heads"),
      positive<C>("num_channels", &C::num_channels, "encoder channels"),
      positive<C>("image_size", &C::image_size, "encoder image_size"),
      positive<C>("patch_size", &C::patch_size, "encoder patch_size"),
      value<C>("hidden_act", &C::hidden_act, "mlp activation"),
      value<C>("layer_norm_eps", &C::layer_norm_eps, "every layer_norm's epsilon"),
      value<C>("attention_dropout", &C::attention_dropout, "mixer dropout"),
      ignored<C>("projection_dim", "CLIPVisionModelWithProjection's head, which LLaVA lacks"),
      ignored<C>("vocab_size", "unused by the vision tower (older llava files write it)"),
      ignored<C>("initializer_range", "initialization of a fresh tower"),
      ignored<C>("initializer_factor", "initialization of a fresh tower"),
      ignored<C>("dropout", "unused by CLIPVisionTransformer"),
  };
  keys.insert(keys.end(), own.begin(), own.end());
  return keys;
}

Read<Llava> feature_layers() {
  return [](const Node& v, const std::string& path, Llava& l, Diagnostics& d) {
    l.vision_feature_layer.clear();
    if (v.is_sequence()) {
      for (const auto& item : v.items) {
        int64_t n = 0;
        if (parse(item, path, d, n)) l.vision_feature_layer.push_back(n);
      }
      if (v.items.empty()) d.error(v.mark, path, "must name at least one layer");
      return;
    }
    int64_t n = 0;
    if (parse(v, path, d, n)) l.vision_feature_layer.push_back(n);
  };
}

Read<Llava> keep_node(const Node* Llava::*member) {
  return [member](const Node& v, const std::string&, Llava& l, Diagnostics&) { l.*member = &v; };
}

std::vector<BasicKey<Llava>> llava_keys() {
  using L = Llava;
  auto keys = provenance_keys<L>();
  const std::vector<BasicKey<L>> own = {
      ignored<L>("model_type", "llava (read first)"),
      {"text_config", keep_node(&L::text_config), nullptr, "the decoder"},
      {"vision_config", keep_node(&L::vision_config), nullptr, "the encoder"},
      value<L>("image_token_index", &L::image_token_index, "encoder_tokens.image"),
      value<L>("projector_hidden_act", &L::projector_hidden_act, "connector activation"),
      value<L>("vision_feature_select_strategy", &L::vision_feature_select_strategy,
               "drop_class_token (default) or not (full)"),
      {"vision_feature_layer", feature_layers(), nullptr, "encoder feature_layers"},
      value<L>("multimodal_projector_bias", &L::multimodal_projector_bias, "connector bias"),
      {"image_seq_length", to(&L::image_seq_length), nullptr,
       "checked against the placeholders an image fills"},
      ignored<L>("ignore_index", "the loss's label to skip, a training setting"),
      ignored<L>("vocab_size", "legacy copy of text_config.vocab_size"),
      ignored<L>("tie_word_embeddings", "read from text_config"),
      ignored<L>("image_token_id", "alias of image_token_index written by newer files"),
  };
  keys.insert(keys.end(), own.begin(), own.end());
  return keys;
}

// Diagnostics of a sub-config converted on its own carry `hf.KEY`; they belong at
// `hf.FIELD.KEY`.
void append_below(Diagnostics& into, const Diagnostics& from, const std::string& field) {
  for (const auto& item : from.items()) {
    std::string path = item.path;
    if (path == "hf" || path.rfind("hf.", 0) == 0) path = "hf." + field + path.substr(2);
    into.error(item.mark, path, item.message);
  }
}

// The keys of `node` that `defaults` lists and the node lacks, as "FIELD KEY: VALUE (CLASS)".
void note_defaults(const Node* node, const std::string& field, const std::string& owner,
                   const std::vector<std::pair<std::string, std::string>>& defaults,
                   std::vector<std::string>* out) {
  if (!out) return;
  for (const auto& [key, shown] : defaults)
    if (!node || !node->find(key))
      out->push_back((field.empty() ? "" : field + " ") + key + ": " + shown + " (" + owner + ")");
}

std::string text_of(double v) { return config::format_number(v); }

// A clip_vision_model config (a llava's vision_config, a clip's, or a CLIPVisionModel's own
// file) through CLIPVisionConfig's keys and defaults, problems at hf.FIELD.KEY (hf.KEY when
// `field` is empty).
ClipVision read_clip(const Node& node, const std::string& field, Diagnostics& problems,
                     std::vector<std::string>* defaults) {
  ClipVision v;
  const std::string prefix = field.empty() ? "hf." : "hf." + field + ".";
  if (!node.is_mapping()) {
    problems.error(node.mark, prefix.substr(0, prefix.size() - 1),
                   "must be an object, found " + node.describe());
    return v;
  }
  if (const Node* type = node.find("model_type");
      type && !(type->is_scalar() && type->text == "clip_vision_model"))
    problems.error(type->mark, prefix + "model_type",
                   "only clip_vision_model towers convert (found " + type->describe() + ")");
  apply_keys(node, prefix, clip_keys(),
             "not a known clip_vision_model key; it may change the architecture", v, problems);
  const ClipVision c;
  note_defaults(&node, field, "CLIPVisionConfig",
                {{"hidden_size", std::to_string(c.hidden_size)},
                 {"intermediate_size", std::to_string(c.intermediate_size)},
                 {"num_hidden_layers", std::to_string(c.num_hidden_layers)},
                 {"num_attention_heads", std::to_string(c.num_attention_heads)},
                 {"num_channels", std::to_string(c.num_channels)},
                 {"image_size", std::to_string(c.image_size)},
                 {"patch_size", std::to_string(c.patch_size)},
                 {"hidden_act", c.hidden_act},
                 {"layer_norm_eps", text_of(c.layer_norm_eps)}},
                defaults);
  return v;
}

void check_clip(const ClipVision& v, const Node& at, const std::string& prefix,
                Diagnostics& problems) {
  if (v.image_size % v.patch_size != 0)
    problems.error(at.mark, prefix + "image_size",
                   "image_size " + std::to_string(v.image_size) +
                       " is not a multiple of patch_size " + std::to_string(v.patch_size));
  if (v.hidden_size % v.num_attention_heads != 0)
    problems.error(at.mark, prefix + "num_attention_heads",
                   "hidden_size " + std::to_string(v.hidden_size) + " is not a multiple of " +
                       std::to_string(v.num_attention_heads) + " heads");
}

// transformers' ACT2FN name -> blocks' activation; an unknown one is a problem at `path`.
std::string activation(const std::string& name, const std::string& path, const Node* at,
                       Diagnostics& problems) {
  static const std::map<std::string, std::string> known = {
      {"quick_gelu", "quick_gelu"}, {"gelu", "gelu"}, {"gelu_pytorch_tanh", "gelu_tanh"},
      {"gelu_new", "gelu_tanh"},    {"relu", "relu"}, {"silu", "silu"}};
  const auto it = known.find(name);
  if (it != known.end()) return it->second;
  problems.error(at->mark, path, "activation '" + name + "' has no blocks equivalent");
  return "gelu";
}

// CLIPVisionTransformer as a vision_transformer reading `layers` (hidden-state indices).
Json clip_encoder(const ClipVision& v, const std::string& act, const std::vector<int64_t>& layers,
                  bool drop_class_token) {
  Json block = {{"type", "transformer"},
                {"add_linear_biases", true},
                {"mixer", {{"type", "attention"}, {"heads", v.num_attention_heads}, {"causal", false}}},
                {"mlp", {{"type", "mlp"}, {"intermediate_size", v.intermediate_size},
                         {"activation", act}}},
                {"normalization", {{"type", "layer_norm"}, {"epsilon", v.layer_norm_eps}}}};
  if (v.attention_dropout > 0) block["mixer"]["dropout"] = v.attention_dropout;
  return {{"type", "vision_transformer"},
          {"hidden_size", v.hidden_size},
          {"image_size", v.image_size},
          {"patch_size", v.patch_size},
          {"channels", v.num_channels},
          {"pre_normalization", {{"type", "layer_norm"}, {"epsilon", v.layer_norm_eps}}},
          {"body", {{"type", "repeat"}, {"num_layers", v.num_hidden_layers}, {"block", block}}},
          {"feature_layers", layers},
          {"drop_class_token", drop_class_token}};
}

}  // namespace

std::string llava_text_type(const Node& hf) {
  const Node* text = hf.is_mapping() ? hf.find("text_config") : nullptr;
  const Node* type = text && text->is_mapping() ? text->find("model_type") : nullptr;
  return type && type->is_scalar() ? type->text : "llama";
}

std::optional<Json> convert_llava(const Node& hf, Diagnostics& d, const TextConverter& text,
                                  std::vector<std::string>* defaults) {
  Diagnostics problems;
  Llava l;
  apply_keys(hf, "hf.", llava_keys(), "not a known llava key; it may change the architecture",
             l, problems);
  // LlavaConfig: a vision_config dict builds CLIPVisionConfig from its class defaults; none at
  // all builds LLaVA-1.5's ViT-L/14-336.
  ClipVision v;
  if (!l.vision_config || l.vision_config->is_null()) {
    v.hidden_size = 1024;
    v.intermediate_size = 4096;
    v.patch_size = 14;
    v.image_size = 336;
    v.num_hidden_layers = 24;
    v.num_attention_heads = 16;
    if (defaults) defaults->push_back("vision_config: LLaVA-1.5's CLIP ViT-L/14-336 (LlavaConfig)");
  } else {
    v = read_clip(*l.vision_config, "vision_config", problems, defaults);
  }
  note_defaults(&hf, "", "LlavaConfig",
                {{"image_token_index", "32000"},
                 {"projector_hidden_act", "gelu"},
                 {"vision_feature_select_strategy", "default"},
                 {"vision_feature_layer", "-2"},
                 {"multimodal_projector_bias", "true"}},
                defaults);
  const std::string tower_act =
      activation(v.hidden_act, "hf.vision_config.hidden_act",
                 l.vision_config && l.vision_config->is_mapping()
                     ? l.vision_config->find("hidden_act")
                     : &hf,
                 problems);
  const Node* projector_at = hf.find("projector_hidden_act");
  const std::string projector_act = activation(l.projector_hidden_act, "hf.projector_hidden_act",
                                               projector_at ? projector_at : &hf, problems);
  if (l.vision_feature_select_strategy != "default" && l.vision_feature_select_strategy != "full")
    problems.error(hf.find("vision_feature_select_strategy")->mark,
                   "hf.vision_feature_select_strategy",
                   "must be `default` (drop the class token) or `full`, found '" +
                       l.vision_feature_select_strategy + "'");
  check_clip(v, hf, "hf.vision_config.", problems);
  const bool drop = l.vision_feature_select_strategy == "default";
  const int64_t side = v.patch_size > 0 ? v.image_size / v.patch_size : 0;
  const int64_t tokens = side * side + (drop ? 0 : 1);
  if (l.image_seq_length && *l.image_seq_length != tokens)
    problems.error(hf.find("image_seq_length")->mark, "hf.image_seq_length",
                   std::to_string(*l.image_seq_length) + " placeholders, but each image gives " +
                       std::to_string(tokens) + " features (" + std::to_string(side) + "x" +
                       std::to_string(side) + " patches" + (drop ? "" : " and the class token") +
                       ")");

  // The decoder: text_config through its family, as LlavaConfig builds it (model_type llama
  // when the dict has none; LlamaConfig's defaults when absent).
  std::optional<Json> decoder;
  Node text_node = l.text_config && l.text_config->is_mapping() ? *l.text_config
                                                                 : Node::mapping(hf.mark);
  if (l.text_config && !l.text_config->is_null() && !l.text_config->is_mapping()) {
    problems.error(l.text_config->mark, "hf.text_config",
                   "must be an object, found " + l.text_config->describe());
  } else {
    if (!text_node.find("model_type")) {
      text_node.set("model_type", Node::scalar("llama", false, text_node.mark));
      if (defaults) defaults->push_back("text_config model_type: llama (LlavaConfig)");
    }
    Diagnostics text_problems;
    decoder = text(text_node, text_problems);
    append_below(problems, text_problems, "text_config");
  }
  d.append(problems);
  if (!problems.ok() || !decoder) return std::nullopt;

  const Json encoder = clip_encoder(v, tower_act, l.vision_feature_layer, drop);
  Json connector = {{"type", "mlp"},
                    {"activation", projector_act},
                    {"bias", l.multimodal_projector_bias}};
  Json model = {{"type", "early_fusion"},
                {"decoder", (*decoder)["model"]},
                {"encoders", {{"image", {{"encoder", encoder}, {"connectors", Json::array({connector})}}}}},
                {"encoder_tokens", {{"image", l.image_token_index}}}};
  return Json{{"version", 1}, {"model", model}};
}

std::optional<Json> convert_clip(const Node& hf, Diagnostics& d,
                                 std::vector<std::string>* defaults) {
  Diagnostics problems;
  const Node* type = hf.find("model_type");
  const bool whole = type && type->is_scalar() && type->text == "clip";
  ClipVision v;
  if (whole) {
    // CLIPModel: the vision tower only; the text tower, the projections and logit_scale are
    // a contrastive head an encoder does not have.
    struct ClipModel {
      const Node* vision_config = nullptr;
    } m;
    using M = ClipModel;
    auto keys = provenance_keys<M>();
    const std::vector<BasicKey<M>> own = {
        ignored<M>("model_type", "clip (read first)"),
        {"vision_config",
         [](const Node& n, const std::string&, M& into, Diagnostics&) { into.vision_config = &n; },
         nullptr, "the encoder"},
        ignored<M>("text_config", "the text tower, which an encoder model does not have"),
        ignored<M>("projection_dim", "the contrastive projections' width"),
        ignored<M>("logit_scale_init_value", "the contrastive loss's temperature"),
        ignored<M>("initializer_factor", "initialization of a fresh model"),
        ignored<M>("text_config_dict", "legacy copy of text_config"),
        ignored<M>("vision_config_dict", "legacy copy of vision_config"),
    };
    keys.insert(keys.end(), own.begin(), own.end());
    apply_keys(hf, "hf.", keys, "not a known clip key; it may change the architecture", m,
               problems);
    if (m.vision_config && !m.vision_config->is_null()) {
      v = read_clip(*m.vision_config, "vision_config", problems, defaults);
    } else if (defaults) {
      defaults->push_back("vision_config: CLIPVisionConfig's defaults (CLIPConfig)");
    }
  } else {
    v = read_clip(hf, "", problems, defaults);
  }
  check_clip(v, hf, whole ? "hf.vision_config." : "hf.", problems);
  const Node* act_at = whole && hf.find("vision_config") && hf.find("vision_config")->is_mapping()
                           ? hf.find("vision_config")->find("hidden_act")
                           : hf.find("hidden_act");
  const std::string act = activation(v.hidden_act, whole ? "hf.vision_config.hidden_act"
                                                         : "hf.hidden_act",
                                     act_at ? act_at : &hf, problems);
  d.append(problems);
  if (!problems.ok()) return std::nullopt;
  // CLIPVisionModel's last_hidden_state: every token of the last layer, before post_layernorm
  // (which only the pooled class token passes through).
  return Json{{"version", 1},
              {"model", {{"type", "encoder_model"}, {"encoder", clip_encoder(v, act, {-1}, false)}}}};
}

namespace {

// CLIPVisionTransformer's names below `tower` (a regex prefix), aimed at `e` + blocks' names.
std::vector<TensorName> vision_tower_names(const std::string& tower, const std::string& e,
                                           const Json& vit, std::vector<std::string>& notes) {
  std::vector<TensorName> out;
  const std::string layer = tower + R"(encoder\.layers\.(\d+)\.)";
  // Layers the model does not build: read off the resolved tower (num_layers as written, the
  // body cut to the last selected feature layer).
  const int64_t depth = vit.value("num_layers", int64_t{0});
  const int64_t built = vit.contains("body") ? vit["body"].value("num_layers", depth) : depth;
  for (int64_t i = built; i < depth; ++i)
    out.push_back({tower + R"(encoder\.layers\.)" + std::to_string(i) + R"(\..*)", {}});
  if (built < depth)
    notes.push_back("vision tower layers " + std::to_string(built) + "-" +
                    std::to_string(depth - 1) +
                    " of the checkpoint are skipped: the model reads the output of layer " +
                    std::to_string(built) + " and builds nothing past it");
  const bool post = vit.contains("post_normalization") && !vit["post_normalization"].is_null();
  if (!post) {
    out.push_back({tower + R"(post_layernorm\.(weight|bias))", {}});
    notes.push_back(
        "the vision tower's post_layernorm is skipped: CLIP applies it to the pooled class token "
        "only, which the model does not read");
  }
  const std::vector<TensorName> names = {
      {tower + R"(embeddings\.patch_embedding\.weight)", {e + "patch_embedding.weight"}},
      {tower + R"(embeddings\.patch_embedding\.bias)", {e + "patch_embedding_bias.weight"}},
      {tower + R"(embeddings\.class_embedding)", {e + "class_embedding.weight"}},
      {tower + R"(embeddings\.position_embedding\.weight)", {e + "position_embedding.weight"}},
      {tower + R"(embeddings\.position_ids)", {}},  // a buffer of older checkpoints
      {tower + R"(pre_layrnorm\.(weight|bias))", {e + "pre_normalization.$1"}},
      {tower + R"(post_layernorm\.(weight|bias))", {e + "post_normalization.$1"}},
      {layer + R"(self_attn\.q_proj\.(weight|bias))", {e + "body.$1.mixer.query.$2"}},
      {layer + R"(self_attn\.k_proj\.(weight|bias))", {e + "body.$1.mixer.key.$2"}},
      {layer + R"(self_attn\.v_proj\.(weight|bias))", {e + "body.$1.mixer.value.$2"}},
      {layer + R"(self_attn\.out_proj\.(weight|bias))", {e + "body.$1.mixer.output.$2"}},
      {layer + R"(layer_norm1\.(weight|bias))", {e + "body.$1.normalization.$2"}},
      {layer + R"(layer_norm2\.(weight|bias))", {e + "body.$1.mlp_normalization.$2"}},
      {layer + R"(mlp\.fc1\.(weight|bias))", {e + "body.$1.mlp.up.$2"}},
      {layer + R"(mlp\.fc2\.(weight|bias))", {e + "body.$1.mlp.down.$2"}},
  };
  out.insert(out.end(), names.begin(), names.end());
  return out;
}

}  // namespace

LlavaNames llava_names(const Family& text_family, const Json& model) {
  LlavaNames out;
  for (const auto& t : text_family.tensors) {
    TensorName name = t;
    for (auto& to : name.to) to = "decoder." + to;
    // On disk: language_model.<LlamaForCausalLM names>. In memory (newer transformers):
    // model.language_model.<LlamaModel names without model.>, lm_head.weight at the top.
    TensorName disk = name;
    disk.from = R"(language_model\.)" + t.from;
    out.text.push_back(disk);
    TensorName memory = name;
    const std::string inner = R"(model\.)";
    memory.from = t.from.rfind(inner, 0) == 0 ? R"(model\.language_model\.)" + t.from.substr(inner.size())
                                             : t.from;
    out.text.push_back(memory);
  }
  // Each layout's rules of its own, on-disk first: export writes the first rule's names.
  const Json& vit = model["encoders"]["image"]["encoder"];
  std::vector<std::string> said_again;
  for (const char* layout : {"", R"(model\.)"}) {
    const std::string prefix = layout;
    const auto tower = vision_tower_names(prefix + R"(vision_tower\.vision_model\.)",
                                          "encoders.image.encoder.", vit,
                                          prefix.empty() ? out.notes : said_again);
    out.vision.insert(out.vision.end(), tower.begin(), tower.end());
    out.vision.push_back({prefix + R"(multi_modal_projector\.linear_1\.(weight|bias))",
                          {"encoders.image.connectors.0.up.$1"}});
    out.vision.push_back({prefix + R"(multi_modal_projector\.linear_2\.(weight|bias))",
                          {"encoders.image.connectors.0.down.$1"}});
  }
  return out;
}

std::vector<TensorName> clip_vision_names(const Json& tower, std::vector<std::string>* notes) {
  std::vector<std::string> said;
  // CLIPVisionModel's `vision_model.*`; a whole CLIPModel also holds the text tower and the
  // projections, which an encoder does not use.
  auto out = vision_tower_names(R"(vision_model\.)", "encoder.", tower, said);
  for (const char* unused : {R"(text_model\..*)", R"(visual_projection\.weight)",
                             R"(text_projection\.weight)", R"(logit_scale)"})
    out.push_back({unused, {}});
  if (notes) notes->insert(notes->end(), said.begin(), said.end());
  return out;
}

}  // namespace blocks::hf

namespace blocks::hf {

namespace {

// blocks' activation -> transformers' ACT2FN name, the inverse of convert_llava's table.
std::optional<std::string> hf_activation(const std::string& blocks) {
  static const std::map<std::string, std::string> known = {
      {"quick_gelu", "quick_gelu"}, {"gelu", "gelu"}, {"gelu_tanh", "gelu_pytorch_tanh"},
      {"relu", "relu"},             {"silu", "silu"}};
  const auto it = known.find(blocks);
  if (it == known.end()) return std::nullopt;
  return it->second;
}

const Json& at_path(const Json& j, const std::vector<std::string>& keys) {
  static const Json null;
  const Json* at = &j;
  for (const auto& k : keys) {
    if (!at->is_object() || !at->contains(k)) return null;
    at = &(*at)[k];
  }
  return *at;
}

}  // namespace

std::optional<Json> export_llava(const Json& document, const ExportOptions& options,
                                 const TextExporter& text, Diagnostics& d) {
  Diagnostics problems;
  const Json& model = at_path(document, {"model"});
  auto refuse = [&](const std::string& path, const std::string& why) {
    problems.error({}, path, why + " (Hugging Face llava cannot hold it)");
  };
  // One encoder, `image`, with one mlp connector; the placeholder in the decoder's table.
  const Json& encoders = at_path(model, {"encoders"});
  if (!encoders.is_object() || encoders.size() != 1 || !encoders.contains("image"))
    refuse("model.encoders", "encoders other than exactly one named `image`");
  for (const char* markers : {"begin_tokens", "end_tokens"})
    if (const Json& m = at_path(model, {markers}); m.is_object() && !m.empty())
      refuse(std::string("model.") + markers, "tokens around each image");
  if (const Json& rows = at_path(model, {"fusion_vocab_size"});
      rows.is_number_integer() && rows.get<int64_t>() > 0)
    refuse("model.fusion_vocab_size", "a fusion embedding (token rows after the vocabulary)");
  const Json& image = at_path(encoders, {"image"});
  const Json& vit = at_path(image, {"encoder"});
  const Json& connectors = at_path(image, {"connectors"});
  if (!vit.is_object() || vit.value("type", "") != "vision_transformer")
    refuse("model.encoders.image.encoder", "an encoder that is not a vision_transformer");
  const bool one_mlp =
      connectors.is_array() && connectors.size() == 1 && connectors[0].value("type", "") == "mlp";
  if (!one_mlp)
    refuse("model.encoders.image.connectors", "connectors other than one `mlp` projector");
  const Json& block = at_path(vit, {"body", "block"});
  const Json& act = at_path(block, {"mlp", "activation"});
  const std::string tower_act = act.is_string() ? act.get<std::string>() : "";
  const auto tower_hf_act = hf_activation(tower_act);
  if (!tower_hf_act)
    refuse("model.encoders.image.encoder.body.block.mlp.activation",
           "activation '" + tower_act + "'");
  const std::string projector_act = one_mlp ? connectors[0].value("activation", "") : "";
  const auto projector_hf_act = hf_activation(projector_act);
  if (one_mlp && !projector_hf_act)
    refuse("model.encoders.image.connectors[0].activation", "activation '" + projector_act + "'");

  // The decoder through its family, its reasons below model.decoder.
  Diagnostics text_problems;
  ExportOptions text_options = options;
  text_options.model_type.clear();
  text_options.resolve = nullptr;
  std::optional<Json> text_config =
      text(Json{{"version", 1}, {"model", model.value("decoder", Json())}}, text_options,
           text_problems);
  for (const auto& item : text_problems.items()) {
    std::string path = item.path;
    if (path == "model" || path.rfind("model.", 0) == 0)
      path = "model.decoder" + path.substr(std::string("model").size());
    problems.error(item.mark, path, item.message);
  }
  if (!problems.ok() || !text_config || !tower_hf_act || !projector_hf_act) {
    d.append(problems);
    return std::nullopt;
  }
  text_config->erase("torch_dtype");  // the top level says it

  auto integer = [](const Json& j, const char* key) { return j.value(key, int64_t{0}); };
  const Json& eps = at_path(vit, {"pre_normalization", "epsilon"});
  Json vision = {{"model_type", "clip_vision_model"},
                 {"hidden_size", integer(vit, "hidden_size")},
                 {"image_size", integer(vit, "image_size")},
                 {"patch_size", integer(vit, "patch_size")},
                 {"num_channels", integer(vit, "channels")},
                 {"num_hidden_layers", integer(vit, "num_layers")},
                 {"num_attention_heads", integer(at_path(block, {"mixer"}), "heads")},
                 {"intermediate_size", integer(at_path(block, {"mlp"}), "intermediate_size")},
                 {"hidden_act", *tower_hf_act},
                 {"layer_norm_eps", eps.is_number() ? eps.get<double>() : 1e-5}};
  if (const Json& dropout = at_path(block, {"mixer", "dropout"});
      dropout.is_number() && dropout.get<double>() > 0)
    vision["attention_dropout"] = dropout;
  const Json& layers = at_path(vit, {"feature_layers"});
  Json out = {{"architectures", {"LlavaForConditionalGeneration"}},
              {"model_type", "llava"},
              {"image_token_index", at_path(model, {"encoder_tokens", "image"})},
              {"image_seq_length", integer(image, "tokens")},
              {"projector_hidden_act", *projector_hf_act},
              {"multimodal_projector_bias", connectors[0].value("bias", true)},
              {"vision_feature_layer", layers.is_array() && layers.size() == 1 ? layers[0] : layers},
              {"vision_feature_select_strategy",
               vit.value("drop_class_token", false) ? "default" : "full"},
              {"text_config", *text_config},
              {"vision_config", vision}};
  if (!options.torch_dtype.empty()) out["torch_dtype"] = options.torch_dtype;
  out = Json::parse(nlohmann::json::parse(out.dump()).dump());  // keys sorted, as transformers writes them

  // Read back: what transformers would build from this file must be this model.
  if (!options.resolve) {
    d.error({}, "model", "a llava export needs ExportOptions::resolve to check its config.json");
    return std::nullopt;
  }
  Diagnostics back;
  const auto node = config::load_json(out.dump(), "config.json", back);
  const auto imported = node ? import_config(*node, back) : std::nullopt;
  const auto read_back = imported ? options.resolve(*imported, back) : std::nullopt;
  Diagnostics again;
  const auto original = options.resolve(document, again);
  if (!read_back || !original) {
    for (const auto& item : back.items())
      d.error({}, "model", "the written config.json does not import back: " + item.path + ": " +
                               item.message);
    for (const auto& item : again.items()) d.error({}, item.path, item.message);
    if (back.ok() && again.ok())
      d.error({}, "model", "the written config.json does not import back");
    return std::nullopt;
  }
  const std::string changed = architecture_differences(*original, *read_back);
  if (!changed.empty()) {
    d.error({}, "model",
            "Hugging Face llava would load a different model (the export has no key for these; "
            "model, then what the written config.json gives):" +
                changed);
    return std::nullopt;
  }
  return out;
}

}  // namespace blocks::hf
