// The registry of kinds and types: duplicates are errors, slots accept the kinds they declare,
// and the config core works end to end with a registry of test-only types (no blocks types).
#include "framework/config/registry.h"

#include <gtest/gtest.h>

#include "blocks/mixers/attention.h"
#include "blocks/registry.h"
#include "blocks/train/train.h"
#include "framework/config/document.h"
#include "framework/config/resolve.h"
#include "framework/config/schema.h"

namespace toy {

using namespace blocks::config;

// A tiny config language of its own: a `toy` model holding gadgets.
struct ModelKind : Config {
  static constexpr std::string_view kind_name = "model";
};
struct GadgetKind : Config {
  static constexpr std::string_view kind_name = "gadget";
};

struct SpringConfig : Declared<SpringConfig, GadgetKind> {
  static constexpr std::string_view type_name = "spring";
  static constexpr std::string_view type_doc = "A coil spring.";
  int64_t coils = 3;
  std::string material = "steel";
  std::optional<double> stiffness;  // derived: twice the coils, times the model's hardness
  static void declare(Fields<SpringConfig>& f) {
    f.add("coils", &SpringConfig::coils, "Number of coils.").min(1);
    f.add("material", &SpringConfig::material, "What it is made of.", Hint::optional)
        .choices({"steel", "bronze"});
    f.add("stiffness", &SpringConfig::stiffness, "Twice the coils times hardness.", Hint::derived);
  }
  void resolve(ResolveContext& ctx) override {
    set_default(stiffness, 2.0 * static_cast<double>(coils) * ctx.lr_scale);
  }
};

struct LeverConfig : Declared<LeverConfig, GadgetKind> {
  static constexpr std::string_view type_name = "lever";
  static constexpr std::string_view type_doc = "A lever.";
  double length = 1.0;
  static void declare(Fields<LeverConfig>& f) {
    f.add("length", &LeverConfig::length, "Length in metres.").above(0);
  }
};

struct ToyConfig : Declared<ToyConfig, ModelKind> {
  static constexpr std::string_view type_name = "toy";
  static constexpr std::string_view type_doc = "A toy made of gadgets.";
  std::string name;
  double hardness = 1.0;
  Dynamic<GadgetKind> gadget;
  std::vector<Dynamic<GadgetKind>> spares;
  static void declare(Fields<ToyConfig>& f) {
    f.add("name", &ToyConfig::name, "Its name.").required();
    f.add("hardness", &ToyConfig::hardness, "Multiplies every spring's stiffness.").above(0);
    f.add("gadget", &ToyConfig::gadget, "The main gadget.").required();
    f.add("spares", &ToyConfig::spares, "Spare gadgets.", Hint::optional);
  }
  // The context has no field for toys; lr_scale carries hardness down to the springs.
  void resolve(ResolveContext& ctx) override { ctx.lr_scale = hardness; }
  void validate(const ResolveContext& ctx) const override {
    if (name == "broken") ctx.error(*this, "name", "a toy cannot be called 'broken'");
  }
};

// Same type name as the gadget, in another kind: allowed.
struct SpringToyConfig : Declared<SpringToyConfig, ModelKind> {
  static constexpr std::string_view type_name = "spring";
  static constexpr std::string_view type_doc = "A toy that is a spring.";
  static void declare(Fields<SpringToyConfig>&) {}
};

Registry toy_registry() {
  Registry r;
  r.add_kind("model", "A whole toy.");
  r.add_kind("gadget", "A part of a toy.");
  r.add<ToyConfig>();
  r.add<SpringConfig>();
  r.add<LeverConfig>();
  return r;
}

}  // namespace toy

namespace blocks::config {
namespace {

template <class F>
std::string logic_error_of(F&& f) {
  try {
    f();
  } catch (const RegistrationError& e) {
    return e.what();
  }
  return "(no std::logic_error)";
}

// --- duplicates and unknown kinds ---

TEST(Registry, DuplicateKindThrows) {
  Registry r = toy::toy_registry();
  EXPECT_EQ(logic_error_of([&] { r.add_kind("gadget", "again"); }),
            "kind 'gadget' is registered twice");
}

TEST(Registry, DuplicateTypeThrows) {
  Registry r = toy::toy_registry();
  EXPECT_EQ(logic_error_of([&] { r.add<toy::LeverConfig>(); }),
            "gadget type 'lever' is registered twice");
}

TEST(Registry, TypeOfAnUnknownKindThrows) {
  Registry r;
  r.add_kind("model", "A whole toy.");
  EXPECT_EQ(logic_error_of([&] { r.add<toy::SpringConfig>(); }),
            "type 'spring' names unknown kind 'gadget'");
}

TEST(Registry, TheSameNameInAnotherKindIsFine) {
  Registry r = toy::toy_registry();
  r.add<toy::SpringToyConfig>();
  EXPECT_EQ(r.find("gadget", "spring"), &type_info<toy::SpringConfig>());
  EXPECT_EQ(r.find("model", "spring"), &type_info<toy::SpringToyConfig>());
  EXPECT_EQ(r.find("gadget", "toy"), nullptr);
  EXPECT_EQ(r.find("nothing", "spring"), nullptr);
}

// A sequence type named like a block type would make `type: transformer` ambiguous in block
// slots, which take both kinds.
struct ShadowingSequenceConfig : Declared<ShadowingSequenceConfig, blocks::SequenceConfig> {
  static constexpr std::string_view type_name = "transformer";
  static constexpr std::string_view type_doc = "A sequence that shadows the transformer block.";
  static void declare(Fields<ShadowingSequenceConfig>&) {}
  int64_t layer_count() const override { return 1; }
};

TEST(Registry, ANameTwoKindsShareInOneSlotThrows) {
  Registry r;
  blocks::register_all(r);
  EXPECT_EQ(logic_error_of([&] { r.add<ShadowingSequenceConfig>(); }),
            "sequence type 'transformer' collides with block type 'transformer' in block slots");
}

TEST(Registry, BlocksTypesRegisteredTwiceThrow) {
  Registry r;
  blocks::register_all(r);
  EXPECT_EQ(logic_error_of([&] { blocks::register_all(r); }), "kind 'model' is registered twice");
  EXPECT_EQ(logic_error_of([&] { r.add<blocks::AttentionConfig>(); }),
            "mixer type 'attention' is registered twice");
}

// --- lookups in the blocks registry ---

TEST(Registry, BlocksKindsAreRegisteredInOrder) {
  std::vector<std::string> names;
  for (const KindInfo* k : blocks::registry().kinds()) names.push_back(k->name);
  EXPECT_EQ(names, (std::vector<std::string>{"model", "block", "sequence", "mixer", "mlp",
                                             "normalization", "initialization", "rotary",
                                             "encoder", "connector", "peft", "schedule"}));
}

TEST(Registry, SectionsAreTopLevelPartsOfOneType) {
  const Registry& r = blocks::registry();
  ASSERT_EQ(r.sections().size(), 1u);
  EXPECT_EQ(r.sections()[0].name, "train");
  EXPECT_EQ(r.sections()[0].type->name, "train");
  EXPECT_NE(r.section("train"), nullptr);
  EXPECT_EQ(r.section("model"), nullptr);
  Registry own;
  blocks::register_all(own);
  EXPECT_EQ(logic_error_of([&] { own.add_section<blocks::TrainConfig>("train", "again"); }),
            "section 'train' is registered twice");
  EXPECT_EQ(logic_error_of([&] { own.add_section<blocks::TrainConfig>("model", "clash"); }),
            "section 'model' is named like a top-level field");
}

TEST(Registry, BlockSlotsAcceptSequencesButNotTheOtherWayRound) {
  const Registry& r = blocks::registry();
  std::vector<std::string> names;
  for (const TypeInfo* t : r.types_for("block")) names.push_back(t->name);
  EXPECT_EQ(names, (std::vector<std::string>{"fixed", "gated_cross_attention", "pattern", "repeat",
                                             "transformer"}));
  EXPECT_NE(r.find("block", "repeat"), nullptr);
  EXPECT_EQ(r.find("sequence", "transformer"), nullptr);
  std::vector<std::string> own;
  for (const TypeInfo* t : r.types_of("block")) own.push_back(t->name);
  EXPECT_EQ(own, (std::vector<std::string>{"gated_cross_attention", "transformer"}));
}

// --- a registry of test-only types, end to end ---

TEST(ToyRegistry, LoadsResolvesAndDumps) {
  const Registry r = toy::toy_registry();
  Diagnostics d;
  auto doc = load_document_text(
      "version: 1\nmodel:\n  type: toy\n  name: tin\n  hardness: 2\n"
      "  gadget: {type: spring, coils: 5}\n  spares: [{type: lever}, {type: spring, material: "
      "bronze}]\n",
      "toy.yaml", r, d);
  ASSERT_TRUE(doc) << d.format();
  EXPECT_EQ(doc->dump(),
            Json::parse(R"({"version": 1, "model": {"type": "toy", "name": "tin", "hardness": 2.0,
              "gadget": {"type": "spring", "coils": 5, "material": "steel", "stiffness": 20.0},
              "spares": [{"type": "lever", "length": 1.0},
                         {"type": "spring", "coils": 3, "material": "bronze",
                          "stiffness": 12.0}]}})"));
  auto* toy = dynamic_cast<toy::ToyConfig*>(doc->model.get());
  ASSERT_NE(toy, nullptr);
  EXPECT_EQ(toy->gadget.type_name(), "spring");
  EXPECT_EQ(toy->gadget.as<toy::SpringConfig>()->coils, 5);
  EXPECT_EQ(toy->mark_of("gadget").where(), "toy.yaml:6:11");
}

TEST(ToyRegistry, ErrorsNameOnlyTheTestTypes) {
  const Registry r = toy::toy_registry();
  Diagnostics d;
  EXPECT_FALSE(load_document_text(
      "version: 1\nmodel:\n  type: toy\n  name: tin\n  gadget: {type: sprung, coils: 0}\n"
      "  spares: [{type: lever, lenght: 2}, {type: spring, material: tin}]\n",
      "toy.yaml", r, d));
  EXPECT_EQ(d.format(),
            "toy.yaml:5:18: error: model.gadget.type: unknown gadget type 'sprung'; did you mean "
            "'spring'? (valid: lever, spring)\n"
            "toy.yaml:6:26: error: model.spares[0]: unknown field 'lenght' in lever gadget; did "
            "you mean 'length'? (valid: length)\n"
            "toy.yaml:6:63: error: model.spares[1].material: unknown value 'tin' (valid: steel, "
            "bronze)\n");
}

TEST(ToyRegistry, RulesAndRangesOfTestTypes) {
  const Registry r = toy::toy_registry();
  Diagnostics d;
  EXPECT_FALSE(load_document_text(
      "version: 1\nmodel: {type: toy, name: broken, gadget: {type: lever}}\n", "toy.yaml", r, d));
  EXPECT_EQ(d.format(), "toy.yaml:2:26: error: model.name: a toy cannot be called 'broken'\n");
  Diagnostics d2;
  EXPECT_FALSE(load_document_text(
      "version: 1\nmodel: {type: toy, name: t, gadget: {type: spring, coils: 0}}\n", "toy.yaml", r,
      d2));
  EXPECT_EQ(d2.format(), "toy.yaml:2:59: error: model.gadget.coils: must be >= 1, found 0\n");
  Diagnostics d3;
  EXPECT_FALSE(load_document_text("version: 1\nmodel: {type: attention}\n", "toy.yaml", r, d3));
  EXPECT_EQ(d3.format(),
            "toy.yaml:2:15: error: model.type: unknown model type 'attention' (valid: toy)\n");
}

TEST(ToyRegistry, SchemaIsDerivedFromTheTestDeclarations) {
  const Json schema = json_schema(toy::toy_registry());
  const Json& defs = schema["$defs"];
  ASSERT_TRUE(defs.contains("gadget.spring")) << schema.dump(2);
  const Json& spring = defs["gadget.spring"];
  EXPECT_EQ(spring["properties"]["type"], Json({{"const", "spring"}}));
  EXPECT_EQ(spring["properties"]["coils"]["minimum"], 1.0);
  EXPECT_EQ(spring["properties"]["coils"]["default"], 3);
  EXPECT_EQ(spring["properties"]["material"]["enum"], Json({"steel", "bronze"}));
  EXPECT_EQ(spring["additionalProperties"], false);
  EXPECT_TRUE(defs.contains("gadget.lever"));
  EXPECT_FALSE(defs.contains("mixer.attention"));
}

}  // namespace
}  // namespace blocks::config
