// Models made of models: a composite model type registered by this file alone (config, module
// and registration, as a program linking blocks would write it) holds two language models of
// different widths. Each resolves in its own scope (config::ResolveContext::open_model_scope):
// the first's `add_linear_biases` and LoRA targets never reach the second; lr scales still
// multiply down from the composite. Both build, initialise and run through ModelModule.
#include "blocks/models/model_module.h"
#include "framework/config/registry.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

// Two models side by side on the same tokens; logits are the two models' logits, concatenated.
struct PairModelConfig : Declared<PairModelConfig, ModelConfig> {
  static constexpr std::string_view type_name = "pair";
  static constexpr std::string_view type_doc = "Two models on the same tokens.";
  Dynamic<ModelConfig> first;
  Dynamic<ModelConfig> second;
  double lr_scale = 1.0;
  static void declare(Fields<PairModelConfig>& f) {
    f.add("first", &PairModelConfig::first, "The first model.").required();
    f.add("second", &PairModelConfig::second, "The second model.").required();
    declare_lr_scale(f);
  }
  void resolve_model(ResolveContext& ctx) override { apply_lr_scale(ctx, lr_scale); }
};

class PairModel : public ModelModule {
 public:
  PairModel(const PairModelConfig& c, Builder& b, const std::string& path) : path_(path) {
    first_ =
        register_module("first", b.build_as<ModelModule>(*c.first, child_path(c, path, *c.first)));
    second_ = register_module("second",
                              b.build_as<ModelModule>(*c.second, child_path(c, path, *c.second)));
  }
  using ModelModule::forward;
  ModelOutput forward(const ModelInput& input) override {
    check_inputs(input, path_);
    ModelOutput a = first_->forward(ModelInput{.tokens = input.tokens});
    ModelOutput b = second_->forward(ModelInput{.tokens = input.tokens});
    return {.logits = at::cat({a.logits, b.logits}, -1), .aux_loss = a.aux_loss + b.aux_loss};
  }
  std::vector<InputSpec> inputs() const override {
    return {{"tokens", InputSpec::Type::integer, 2, true, "", "token ids [batch, tokens]"}};
  }
  std::vector<std::string> hidden_state_names() const override { return {}; }

 private:
  std::shared_ptr<ModelModule> first_, second_;
  std::string path_;
};

const config::Registry& pair_registry() {
  static const config::Registry registry = [] {
    config::Registry r;
    register_all(r);
    r.add<PairModelConfig>();
    return r;
  }();
  return registry;
}

const nn::ModuleRegistry& pair_modules() {
  static const nn::ModuleRegistry modules = [] {
    nn::ModuleRegistry m;
    nn::register_all(m);
    m.add<PairModelConfig>([](const PairModelConfig& c, Builder& b, const std::string& path) {
      return std::make_shared<PairModel>(c, b, path);
    });
    return m;
  }();
  return modules;
}

// A small language model of width `hidden` with `extra` lines at its top level (indented by 4).
std::string language_model(int hidden, const std::string& extra, const std::string& mlp) {
  return "    type: language_model\n    hidden_size: " + std::to_string(hidden) + "\n" + extra +
         "    embeddings: {vocab_size: 50}\n"
         "    decoder:\n"
         "      type: repeat\n"
         "      num_layers: 2\n"
         "      block:\n"
         "        type: transformer\n"
         "        mixer: {type: attention, heads: 4, rotary: {type: default}}\n"
         "        mlp: " +
         mlp +
         "\n"
         "        normalization: {type: rms_norm}\n"
         "    head:\n"
         "      normalization: {type: rms_norm}\n";
}

std::string pair_text(const std::string& first_extra) {
  return "version: 1\nmodel:\n  type: pair\n  lr_scale: 0.5\n  first:\n" +
         language_model(32, first_extra, "{type: mlp, intermediate_size: 64}") + "  second:\n" +
         language_model(48, "", "{type: gated, intermediate_size: 96}");
}

const std::string kFirstExtra =
    "    add_linear_biases: true\n"
    "    peft: {type: lora, rank: 4, alpha: 8, targets: [query, value, up]}\n";

std::optional<config::Document> load(const std::string& text, config::Diagnostics& d) {
  return config::load_document_text(text, "pair.yaml", pair_registry(), d);
}

const nn::ParameterRecord* record(const Model& model, const std::string& name) {
  for (const auto& p : model.parameters)
    if (p.name == name) return &p;
  return nullptr;
}

TEST(CompositeModel, EachModelResolvesInItsOwnScope) {
  config::Diagnostics d;
  auto doc = load(pair_text(kFirstExtra), d);
  ASSERT_TRUE(doc) << d.format();
  const config::Json json = doc->dump();
  const auto& first = json["model"]["first"]["decoder"]["block"];
  const auto& second = json["model"]["second"]["decoder"]["block"];
  // The first model's shortcut and targets apply inside it...
  EXPECT_EQ(first["mixer"]["query"]["bias"], true);
  EXPECT_EQ(first["mixer"]["query"]["apply_peft"], true);
  EXPECT_EQ(first["mixer"]["key"]["apply_peft"], false);
  EXPECT_EQ(first["mlp"]["up"]["apply_peft"], true);
  EXPECT_EQ(first["mlp"]["up"]["bias"], true);
  EXPECT_EQ(first["mlp"]["up"]["trainable"], false);  // LoRA freezes the base weights
  // ...and nowhere in the second, whose `up` and `query` share the names.
  for (const char* linear : {"query", "key", "value", "output"}) {
    EXPECT_EQ(second["mixer"][linear]["bias"], false) << linear;
    EXPECT_EQ(second["mixer"][linear]["apply_peft"], false) << linear;
    EXPECT_EQ(second["mixer"][linear]["trainable"], true) << linear;
  }
  for (const char* linear : {"gate", "up", "down"}) {
    EXPECT_EQ(second["mlp"][linear]["bias"], false) << linear;
    EXPECT_EQ(second["mlp"][linear]["apply_peft"], false) << linear;
  }
  // lr scales multiply down from the composite into both.
  EXPECT_EQ(first["mixer"]["query"]["effective_lr_scale"], 0.5);
  EXPECT_EQ(second["mlp"]["down"]["effective_lr_scale"], 0.5);
  // Widths are each model's own: head sizes follow from 32 / 4 and 48 / 4.
  EXPECT_EQ(first["mixer"]["head_size"], 8);
  EXPECT_EQ(second["mixer"]["head_size"], 12);
}

TEST(CompositeModel, ResolvingTheResolvedTextChangesNothing) {
  config::Diagnostics d;
  auto doc = load(pair_text(kFirstExtra), d);
  ASSERT_TRUE(doc) << d.format();
  const std::string once = doc->dump().dump();
  config::Diagnostics again;
  auto doc2 = config::load_document_text(once, "resolved.json", pair_registry(), again);
  ASSERT_TRUE(doc2) << again.format();
  EXPECT_EQ(doc2->dump().dump(), once);
}

TEST(CompositeModel, TargetsMatchOnlyTheirOwnModel) {
  // `gate` exists only in the second model (gated MLP): the first's target matches nothing.
  config::Diagnostics d;
  auto doc = load(pair_text("    peft: {type: lora, rank: 4, targets: [gate]}\n"), d);
  EXPECT_FALSE(doc);
  EXPECT_NE(d.format().find("pair.yaml:8:43: error: model.first.peft.targets[0]: target 'gate' "
                            "matches no linear layer (linear names: query, key, value, output, "
                            "up, down)"),
            std::string::npos)
      << d.format();
}

TEST(CompositeModel, ChildrenNeverInheritAWidth) {
  // Without its own hidden_size, a child model is an error, not the sibling's or parent's width.
  config::Diagnostics d;
  std::string text = pair_text("");
  text.replace(text.find("    hidden_size: 48\n"), 20, "");
  EXPECT_FALSE(load(text, d));
  EXPECT_NE(d.format().find("model.second: missing required field 'hidden_size'"),
            std::string::npos)
      << d.format();
}

TEST(CompositeModel, BuildsInitialisesAndRunsThroughTheModelInterface) {
  config::Diagnostics d;
  auto doc = load(pair_text(kFirstExtra), d);
  ASSERT_TRUE(doc) << d.format();
  Model model = build_model(*doc->model, pair_modules());
  nn::initialize(model.parameters, 3, pair_modules());
  // Parameters carry each model's widths and only the first has biases and adapters.
  const auto* q1 = record(model, "first.decoder.0.mixer.query.weight");
  const auto* q2 = record(model, "second.decoder.0.mixer.query.weight");
  ASSERT_TRUE(q1 && q2);
  EXPECT_EQ(q1->shape, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(q2->shape, (std::vector<int64_t>{48, 48}));
  EXPECT_TRUE(record(model, "first.decoder.1.mlp.up.lora_a"));
  EXPECT_TRUE(record(model, "first.decoder.1.mixer.value.bias"));
  for (const auto& p : model.parameters) {
    if (p.name.rfind("second.", 0) != 0) continue;
    EXPECT_EQ(p.role, "base") << p.name;
    EXPECT_TRUE(p.name.find(".bias") == std::string::npos) << p.name;
    EXPECT_TRUE(p.trainable) << p.name;
    EXPECT_DOUBLE_EQ(p.lr_scale, 0.5) << p.name;
  }
  // LoRA's scale comes from the first model's own alpha / rank (8 / 4): with lora_b nonzero,
  // the query's output moves by exactly 2 x lora_b lora_a x.
  const auto query = find_module<Linear>(*model.module, "first.decoder.0.mixer.query");
  ASSERT_TRUE(query);
  EXPECT_DOUBLE_EQ(query->lora_scale, 2.0);

  const at::Tensor ids = at::randint(0, 50, {2, 5}, at::TensorOptions().dtype(at::kLong));
  ModelOutput out = model.module->forward(ModelInput{.tokens = ids});
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 5, 100}));
  EXPECT_TRUE(at::isfinite(out.logits).all().item<bool>());
  // Each half is what the member model computes alone.
  auto first = find_module<ModelModule>(*model.module, "first");
  ASSERT_TRUE(first);
  EXPECT_TRUE(close(out.logits.narrow(-1, 0, 50), first->forward(ids).logits, 0, 0));
}

TEST(CompositeModel, RefusesInputsItDoesNotTake) {
  config::Diagnostics d;
  auto doc = load(pair_text(""), d);
  ASSERT_TRUE(doc) << d.format();
  Model model = build_model(*doc->model, pair_modules(), at::TensorOptions().device(at::kMeta));
  ModelInput input{.tokens = at::zeros({1, 3}, at::kLong)};
  input.named["pixel_values"] = at::zeros({1, 3, 4, 4});
  try {
    model.module->forward(input);
    ADD_FAILURE() << "no error";
  } catch (const nn::InputError& e) {
    EXPECT_STREQ(e.what(),
                 "model: unexpected input tensor `pixel_values`; this model takes: tokens");
  }
}

}  // namespace
}  // namespace blocks::testing
