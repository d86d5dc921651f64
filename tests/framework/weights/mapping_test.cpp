// Mapping options and transforms (framework/weights/mapping.h): rotary permutations against
// convert_llama_weights_to_hf.py's formula and through models of both rotary layouts, slices,
// `relevant_module`, loading a subset of layers with an offset, non-strict reports, mapping-file
// keys, and `blockc forward`'s architecture check against a Hugging Face config.json or the
// `blocks_config` metadata of `blockc init`.
#include "framework/weights/mapping.h"

#include <gmock/gmock.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>

#include "blocks/registry.h"
#include "framework/config/document.h"
#include "tests/support/blockc_run.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using weights::Mapping;
using weights::MappingRule;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

// A folder per test inside this process's own, which is removed at exit.
fs::path scratch() {
  static const TempDir root("mapping_test");
  const fs::path dir = root.path() / ::testing::UnitTest::GetInstance()->current_test_info()->name();
  fs::create_directories(dir);
  return dir;
}

// Random values from a generator of the running test's own (seeded by its name), so that a
// test's tensors depend neither on the global RNG nor on which tests ran before it.
at::Generator& test_generator() {
  static std::map<std::string, at::Generator> by_test;
  const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  return by_test
      .try_emplace(name, at::make_generator<at::CPUGeneratorImpl>(std::hash<std::string>{}(name)))
      .first->second;
}
at::Tensor randn(at::IntArrayRef shape) { return at::randn(shape, test_generator()); }

MappingRule rule(std::string from, std::vector<std::string> to) {
  MappingRule r;
  r.from = std::move(from);
  r.to = std::move(to);
  return r;
}

Named named(const Model& model) {
  Named out;
  for (const auto& p : model.parameters) out.emplace_back(p.name, p.tensor);
  return out;
}

std::string write(const fs::path& path, const Named& tensors) {
  Named detached;
  for (const auto& [n, t] : tensors) detached.emplace_back(n, t.detach().contiguous());
  weights::write_safetensors(path.string(), detached);
  return path.string();
}

TEST(Mapping, RotaryPermuteIsConvertLlamaWeightsToHfsFormula) {
  const int64_t heads = 3, d = 8, n = 5;
  const at::Tensor w = randn({heads * d, n});
  const at::Tensor half = weights::rotary_permute(w, d, MappingRule::Rotary::interleaved_to_half);
  // Row j * d/2 + i of a head (half layout) is row 2i + j (interleaved), by hand.
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < d / 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        EXPECT_TRUE(at::equal(half[h * d + j * d / 2 + i], w[h * d + 2 * i + j]));
  EXPECT_TRUE(
      at::equal(weights::rotary_permute(half, d, MappingRule::Rotary::half_to_interleaved), w));
  EXPECT_TRUE(at::equal(
      weights::rotary_permute(half, d, MappingRule::Rotary::interleaved_to_half, true), w));
  const at::Tensor bias = randn({heads * d});
  EXPECT_TRUE(at::equal(
      weights::rotary_permute(bias, d, MappingRule::Rotary::interleaved_to_half),
      weights::rotary_permute(bias.unsqueeze(1), d, MappingRule::Rotary::interleaved_to_half)
          .squeeze(1)));
  EXPECT_EQ(message_of<weights::MappingError>([&] {
              weights::rotary_permute(w, 7, MappingRule::Rotary::interleaved_to_half);
            }),
            "cannot permute [24, 5] in rotary heads of 7");
  if (!have_reference_python()) GTEST_SKIP() << "no python3 with torch for the reference";
  auto out = run_reference(R"(
w = inputs['w']
dim1, dim2 = w.shape
n_heads = 3
save({'hf': w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)},
     OUTPUT)
)",
                           {{"w", w}});
  ASSERT_TRUE(out.count("hf"));
  EXPECT_TRUE(at::equal(out["hf"], half));
}

// A Hugging Face (half layout) checkpoint loads into a model with Meta's interleaved layout
// through rotary_permute on query and key, and both models give the same logits.
TEST(Mapping, RotaryPermutedCheckpointGivesTheSameLogitsInTheInterleavedLayout) {
  ModelText text;
  text.mixer = "{type: attention, heads: 4, head_groups: 2, rotary: {type: default}}";
  Model half = build_text(text.text(), at::kFloat, 3);
  text.mixer =
      "{type: attention, heads: 4, head_groups: 2, rotary: {type: default, layout: interleaved}}";
  Model interleaved = build_text(text.text(), at::kFloat, 4);
  const fs::path dir = scratch();
  const std::string file = write(dir / "hf.safetensors",
                                 weights::export_mapped(named(half), weights::hf_mapping("llama")));

  Mapping m = weights::hf_mapping("llama");
  for (auto& r : m.rules)
    if (r.from.find("q_proj") != std::string::npos || r.from.find("k_proj") != std::string::npos) {
      r.rotary = MappingRule::Rotary::half_to_interleaved;
      r.head_size = 16;
    }
  const auto report = weights::load_mapped(named(interleaved), {file}, m);
  EXPECT_TRUE(report.ok());
  half.module->eval();
  interleaved.module->eval();
  const at::Tensor ids = at::randint(0, 100, {2, 7}, test_generator(), at::TensorOptions().dtype(at::kLong));
  const at::Tensor a = half.module->forward(ids).logits.detach();
  const at::Tensor b = interleaved.module->forward(ids).logits.detach();
  EXPECT_TRUE(close(b, a, 1e-5, 1e-5));
  // Without the permutation the logits differ: the test can see a wrong layout.
  Model plain = build_text(text.text(), at::kFloat, 4);
  weights::load_mapped(named(plain), {file}, weights::hf_mapping("llama"));
  plain.module->eval();
  EXPECT_FALSE(at::allclose(plain.module->forward(ids).logits.detach(), a, 1e-3, 1e-3));
  // Export undoes the permutation: the original checkpoint, bit for bit.
  const auto back = weights::export_mapped(named(interleaved), m);
  const auto original = weights::export_mapped(named(half), weights::hf_mapping("llama"));
  ASSERT_EQ(back.size(), original.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].first, original[i].first);
    EXPECT_TRUE(at::equal(back[i].second, original[i].second)) << back[i].first;
  }
}

TEST(Mapping, SliceKeepsARangeAndCannotBeExported) {
  const fs::path dir = scratch();
  const at::Tensor big = randn({12, 4});
  const std::string file = write(dir / "c.safetensors", {{"emb", big}, {"w", randn({6, 10})}});
  Mapping m{"test", {rule("emb", {"word"}), rule("w", {"w"})}};
  m.rules[0].slice = true, m.rules[0].slice_dim = 0, m.rules[0].slice_start = 2,
  m.rules[0].slice_end = 10;
  m.rules[1].transpose = true, m.rules[1].slice = true, m.rules[1].slice_dim = 1,
  m.rules[1].slice_start = 1, m.rules[1].slice_end = 4;  // after transpose: [10, 6] -> [10, 3]
  at::Tensor word = at::zeros({8, 4}), w = at::zeros({10, 3});
  weights::load_mapped({{"word", word}, {"w", w}}, {file}, m);
  EXPECT_TRUE(at::equal(word, big.slice(0, 2, 10)));
  const at::Tensor ws = weights::SafetensorsFile::open(file).tensor("w");
  EXPECT_TRUE(at::equal(w, ws.t().slice(1, 1, 4)));
  // A slice beyond the tensor is a reported problem.
  m.rules[0].slice_end = 13;
  try {
    weights::load_mapped({{"word", at::zeros({11, 4})}, {"w", w}}, {file}, m);
    ADD_FAILURE() << "no error";
  } catch (const weights::LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("word (from emb): checkpoint [12, 4] has no slice [2, 13) "
                                    "along dim 0"));
  }
  try {
    weights::export_mapped({{"word", word}}, m);
    ADD_FAILURE() << "no error";
  } catch (const weights::MappingError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot be exported"));
  }
}

// Parts of unequal sizes (Llama 3.2 Vision's embed_tokens: the decoder's table and 8 fusion
// rows): each target gets its rows, export joins them back, and sizes that do not add up to the
// tensor are a reported problem.
TEST(Mapping, SplitSizesGiveUnequalParts) {
  const fs::path dir = scratch();
  const at::Tensor table = randn({13, 4});
  const std::string file = write(dir / "c.safetensors", {{"emb", table}});
  Mapping m{"test", {rule("emb", {"word", "extra"})}};
  m.rules[0].split_sizes = {10, 3};
  at::Tensor word = at::zeros({10, 4}), extra = at::zeros({3, 4});
  weights::load_mapped({{"word", word}, {"extra", extra}}, {file}, m);
  EXPECT_TRUE(at::equal(word, table.slice(0, 0, 10)));
  EXPECT_TRUE(at::equal(extra, table.slice(0, 10, 13)));
  const auto exported = weights::export_mapped({{"word", word}, {"extra", extra}}, m);
  ASSERT_EQ(exported.size(), 1u);
  EXPECT_EQ(exported[0].first, "emb");
  EXPECT_TRUE(at::equal(exported[0].second, table));
  m.rules[0].split_sizes = {10, 2};
  try {
    weights::load_mapped({{"word", word}, {"extra", at::zeros({2, 4})}}, {file}, m);
    ADD_FAILURE() << "no error";
  } catch (const weights::LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("word (from emb): checkpoint [13, 4] cannot split in parts "
                                    "of [10, 2] along dim 0"));
  }
}

TEST(Mapping, RelevantModuleConsidersOnlyItsPrefix) {
  const fs::path dir = scratch();
  const at::Tensor a = randn({3}), b = randn({2, 2});
  const std::string file = write(dir / "c.safetensors", {{"model.a.weight", a},
                                                         {"model.b", b},
                                                         {"teacher.a.weight", randn({5})},
                                                         {"optimizer.step", at::zeros({1})}});
  Mapping m{"test", {rule(R"(a\.weight)", {"x.weight"}), rule("b", {"y"})}};
  m.relevant_module = "model";  // "model." too
  at::Tensor x = at::zeros({3}), y = at::zeros({2, 2});
  const auto report = weights::load_mapped({{"x.weight", x}, {"y", y}}, {file}, m);
  EXPECT_TRUE(report.ok()) << report.format();
  EXPECT_EQ(report.loaded, 2);
  EXPECT_TRUE(at::equal(x, a));
  EXPECT_TRUE(at::equal(y, b));
  const auto back = weights::export_mapped({{"x.weight", x}, {"y", y}}, m);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].first, "model.a.weight");
  EXPECT_EQ(back[1].first, "model.b");
  // Inside the prefix, names no rule maps are still unexpected.
  const std::string extra = write(dir / "d.safetensors", {{"model.c", at::zeros({1})}});
  try {
    weights::load_mapped({{"x.weight", x}, {"y", y}}, {file, extra}, m);
    ADD_FAILURE() << "no error";
  } catch (const weights::LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model.c (no rule of test maps it)"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("teacher")));
  }
}

// A 4-layer model from layers 4-7 of an 8-layer Hugging Face checkpoint (the built-in llama
// table marks capture 1 as the layer).
TEST(Mapping, LayerSubsetWithOffsetLoadsThoseLayers) {
  ModelText text;
  text.layers = 8;
  const Model eight = build_text(text.text(), at::kFloat, 7);
  text.layers = 4;
  Model four = build_text(text.text(), at::kFloat, 8);
  const fs::path dir = scratch();
  const std::string file = write(
      dir / "hf.safetensors", weights::export_mapped(named(eight), weights::hf_mapping("llama")));
  Mapping m = weights::hf_mapping("llama");
  m.layers = weights::LayerRange{4, 7, -4};
  const auto report = weights::load_mapped(named(four), {file}, m);
  EXPECT_TRUE(report.ok()) << report.format();
  const Named eight_named = named(eight);
  std::map<std::string, at::Tensor> source(eight_named.begin(), eight_named.end());
  for (const auto& [name, tensor] : named(four)) {
    std::string from = name;
    if (name.rfind("decoder.", 0) == 0) {
      const size_t dot = name.find('.', 8);
      from = "decoder." + std::to_string(std::stoi(name.substr(8, dot - 8)) + 4) + name.substr(dot);
    }
    ASSERT_TRUE(source.count(from)) << from;
    EXPECT_TRUE(at::equal(tensor, source[from])) << name << " <- " << from;
  }
  // Export puts the layers back at 4-7.
  const auto back = weights::export_mapped(named(four), m);
  bool saw = false;
  for (const auto& [name, tensor] : back) {
    EXPECT_THAT(name, ::testing::Not(HasSubstr("layers.0.")));
    saw = saw || name == "model.layers.7.mlp.down_proj.weight";
  }
  EXPECT_TRUE(saw);
  // Without the option, layers 4-7 are unexpected (strict semantics unchanged).
  Model again = build_text(text.text());
  try {
    weights::load_mapped(named(again), {file}, weights::hf_mapping("llama"));
    ADD_FAILURE() << "no error";
  } catch (const weights::LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model.layers.4.self_attn.q_proj.weight (as "
                                    "decoder.4.mixer.query.weight, which the model lacks)"));
  }
  // A range beyond the checkpoint leaves the model's layers missing.
  m.layers = weights::LayerRange{6, 9, -6};
  try {
    weights::load_mapped(named(again), {file}, m);
    ADD_FAILURE() << "no error";
  } catch (const weights::LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("decoder.2.mixer.query.weight"));
  }
}

TEST(Mapping, NonStrictLoadsWhatMatchesAndReportsTheRest) {
  const fs::path dir = scratch();
  const at::Tensor a = randn({3});
  const std::string file =
      write(dir / "c.safetensors", {{"a", a}, {"b", randn({4})}, {"stray", at::zeros({1})}});
  Mapping m{"test", {rule("a", {"x"}), rule("b", {"y"})}};
  at::Tensor x = at::zeros({3}), y = at::zeros({5}), z = at::zeros({2});
  const auto report = weights::load_mapped({{"x", x}, {"y", y}, {"z", z}}, {file}, m, false);
  EXPECT_EQ(report.loaded, 1);
  EXPECT_TRUE(at::equal(x, a));
  EXPECT_TRUE(at::equal(y, at::zeros({5})));
  EXPECT_THAT(report.missing, ::testing::ElementsAre("z"));
  EXPECT_THAT(report.unexpected, ::testing::ElementsAre("stray (no rule of test maps it)"));
  EXPECT_THAT(report.mismatched, ::testing::ElementsAre("y (from b): checkpoint [4], model [5]"));
}

TEST(Mapping, FileKeys) {
  const fs::path dir = scratch();
  std::ofstream(dir / "m.yaml") << R"(relevant_module: model.
layers: {from: 8, to: 11, offset: -8}
rules:
  - {from: 'l\.(\d+)\.wq', to: decoder.$1.mixer.query.weight, layer_capture: 1,
     rotary_permute: interleaved_to_half, head_size: 64}
  - {from: 'emb', to: embeddings.word.weight, slice: {dim: 0, start: 0, end: 32000}}
)";
  const Mapping m = weights::load_mapping_file((dir / "m.yaml").string());
  EXPECT_EQ(m.relevant_module, "model.");
  ASSERT_TRUE(m.layers);
  EXPECT_EQ(m.layers->from, 8);
  EXPECT_EQ(m.layers->to, 11);
  EXPECT_EQ(m.layers->offset, -8);
  ASSERT_EQ(m.rules.size(), 2u);
  EXPECT_EQ(m.rules[0].layer_capture, 1);
  EXPECT_EQ(m.rules[0].rotary, MappingRule::Rotary::interleaved_to_half);
  EXPECT_EQ(m.rules[0].head_size, 64);
  EXPECT_TRUE(m.rules[1].slice);
  EXPECT_EQ(m.rules[1].slice_end, 32000);
  auto error = [&](const std::string& text) {
    std::ofstream(dir / "bad.yaml") << text;
    try {
      weights::load_mapping_file((dir / "bad.yaml").string());
    } catch (const weights::MappingError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string bad = (dir / "bad.yaml").string() + ":";
  EXPECT_EQ(error("rules: [{from: a, to: b, rotary_permute: half}]\n"),
            bad + "1:42: rules[0].rotary_permute: expected half_to_interleaved or "
                  "interleaved_to_half, found 'half'");
  EXPECT_EQ(error("rules: [{from: a, to: b, rotary_permute: half_to_interleaved}]\n"),
            bad + "1:9: rules[0]: rotary_permute needs an even, positive head_size");
  EXPECT_EQ(error("layers: {from: 1}\nrules: []\n"),
            bad + "1:9: layers: `from` and `to` are required");
  EXPECT_EQ(error("prefix: x\nrules: []\n"),
            bad + "1:1: prefix: unknown key (rules, relevant_module, layers, allow_kind_change)");
  EXPECT_EQ(error("rules: [{from: a, to: b, slice: {dim: 0, stop: 3}}]\n"),
            bad + "1:33: rules[0].slice: `end` is required\n" + bad +
                "1:42: rules[0].slice.stop: unknown key (dim, start, end)");
  // Out of int's range: 4294967297 was truncated to 1.
  EXPECT_EQ(error("rules: [{from: a, to: b, stack_capture: 4294967297}]\n"),
            bad + "1:41: rules[0].stack_capture: expected a capture group number from 0 (none) "
                  "to 2147483647, found 4294967297");
  EXPECT_EQ(error("rules: {from: a}\n"),
            bad + "1:1: expected a mapping with a `rules` list");
  // Every problem of the file at once, each at its line and column.
  EXPECT_EQ(error("rules:\n"
                  "  - {from: 'a(', to: b}\n"
                  "  - {to: c, split_dim: x}\n"
                  "  - {from: d, to: e, transpose: yes, tied: f}\n"
                  "layers: {from: 1, to: 2, offset: one}\n"),
            bad + "2:12: rules[0].from: bad regex `a(`: missing closing parenthesis at offset "
                  "2\n" + bad +
                "3:5: rules[1]: `from` is required\n" + bad +
                "3:24: rules[1].split_dim: expected an integer, found 'x'\n" + bad +
                "4:33: rules[2].transpose: expected true or false, found 'yes'\n" + bad +
                "4:38: rules[2].tied: unknown key (from, to, transpose, split_dim, "
                "stack_capture, layer_capture, rotary_permute, head_size, slice, tied_to)\n" +
                bad + "5:34: layers.offset: expected an integer, found 'one'");
}

// A head tied to the embeddings: a checkpoint that still stores it loads when the tensor equals
// the embeddings, and is refused, naming both, when it does not.
TEST(Mapping, TiedHeadInTheCheckpointMustEqualTheEmbeddings) {
  const fs::path dir = scratch();
  const at::Tensor emb = randn({6, 4});
  MappingRule head = rule(R"(lm_head\.weight)", {"head.output.weight"});
  head.tied_to = "embeddings.word.weight";
  const Mapping m{"test", {rule(R"(embed\.weight)", {"embeddings.word.weight"}), head}};
  at::Tensor target = at::zeros({6, 4});
  const std::string same =
      write(dir / "same.safetensors", {{"embed.weight", emb}, {"lm_head.weight", emb.clone()}});
  const auto report = weights::load_mapped({{"embeddings.word.weight", target}}, {same}, m);
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.loaded, 1);
  EXPECT_TRUE(at::equal(target, emb));

  const std::string other =
      write(dir / "other.safetensors", {{"embed.weight", emb}, {"lm_head.weight", emb + 1}});
  const std::string narrow =
      write(dir / "narrow.safetensors",
            {{"embed.weight", emb}, {"lm_head.weight", at::zeros({6, 3})}});
  auto problems = [&](const std::string& file) {
    try {
      weights::load_mapped({{"embeddings.word.weight", at::zeros({6, 4})}}, {file}, m);
    } catch (const weights::LoadError& e) {
      return e.report.mismatched;
    }
    return std::vector<std::string>{"loaded"};
  };
  EXPECT_THAT(problems(other),
              ::testing::ElementsAre("lm_head.weight (the model ties it to "
                                     "embeddings.word.weight): differs from embed.weight; untie "
                                     "the model's head to load both"));
  EXPECT_THAT(problems(narrow),
              ::testing::ElementsAre("lm_head.weight (the model ties it to "
                                     "embeddings.word.weight): checkpoint [6, 3], embed.weight "
                                     "[6, 4]"));
  // A model with its own head takes the tensor as usual.
  at::Tensor untied = at::zeros({6, 4});
  weights::load_mapped({{"embeddings.word.weight", at::zeros({6, 4})},
                        {"head.output.weight", untied}},
                       {other}, m);
  EXPECT_TRUE(at::equal(untied, emb + 1));
}

// Not strict, a stack index past the model's experts is reported and the others load.
TEST(Mapping, NonStrictStackIndexOutsideTheTargetIsReported) {
  const fs::path dir = scratch();
  const at::Tensor e0 = randn({3}), e5 = randn({3});
  const std::string file = write(dir / "c.safetensors", {{"e.0", e0}, {"e.5", e5}});
  MappingRule e = rule(R"(e\.(\d+))", {"stacked"});
  e.stack_capture = 1;
  at::Tensor stacked = at::zeros({2, 3});
  const auto report = weights::load_mapped({{"stacked", stacked}}, {file}, {"test", {e}}, false);
  EXPECT_EQ(report.loaded, 1);
  EXPECT_TRUE(at::equal(stacked[0], e0));
  EXPECT_THAT(report.mismatched,
              ::testing::ElementsAre("stacked (from e.5): index 5 outside the model's 2"));
  EXPECT_THAT(report.missing, ::testing::ElementsAre("stacked[1]"));
}

// Loading by name is the identity mapping: reports name each tensor once, and a dtype LibTorch
// lacks is listed with the other problems before anything is copied (not thrown mid-load).
TEST(Mapping, ByNameReportsEveryProblemOnceNamed) {
  const fs::path dir = scratch();
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("f4":{"dtype":"F4","shape":[2,2],"data_offsets":[4,6]},)"
                             R"("stray":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}})";
  std::string bytes(8, '\0');
  const uint64_t size = header.size();
  std::memcpy(bytes.data(), &size, 8);
  bytes += header + std::string(10, '\0');
  std::ofstream(dir / "odd.safetensors", std::ios::binary) << bytes;
  at::Tensor a = at::full({2}, 7.0f), f4 = at::zeros({2, 2}), b = at::zeros({1});
  try {
    weights::load_safetensors({{"a", a}, {"f4", f4}, {"b", b}},
                              {(dir / "odd.safetensors").string()});
    FAIL() << "loaded";
  } catch (const weights::LoadError& e) {
    EXPECT_THAT(std::string(e.what()), ::testing::StartsWith("the checkpoint does not fit the "
                                                             "model:\nmissing from the checkpoint "
                                                             "(1):\n  b\n"));
    EXPECT_THAT(e.report.unexpected, ::testing::ElementsAre("stray"));
    ASSERT_EQ(e.report.mismatched.size(), 2u);
    EXPECT_EQ(e.report.mismatched[0], "a: checkpoint [1], model [2]");
    EXPECT_THAT(e.report.mismatched[1],
                ::testing::StartsWith("f4: safetensors dtype F4 is not supported by LibTorch"));
  }
  EXPECT_TRUE(at::equal(a, at::full({2}, 7.0f)));  // nothing copied
}

// Renamed tensors are copied chunk by chunk, converting dtype, into whole or stacked targets;
// transformed ones through the whole tensor: the values are the same either way.
TEST(Mapping, PlainAndTransformedCopiesConvertDtypes) {
  const fs::path dir = scratch();
  const at::Tensor a = randn({300, 70}).to(at::kBFloat16), e0 = randn({5, 3}),
                   e1 = randn({5, 3});
  const std::string file = write(dir / "c.safetensors",
                                 {{"a", a}, {"t", a}, {"e.0", e0}, {"e.1", e1}});
  MappingRule t = rule("t", {"t"});
  t.transpose = true;
  MappingRule e = rule(R"(e\.(\d+))", {"stacked"});
  e.stack_capture = 1;
  const Mapping m{"test", {rule("a", {"a"}), t, e}};
  at::Tensor ta = at::empty({300, 70}, at::kDouble), tt = at::empty({70, 300}, at::kFloat),
             stacked = at::empty({2, 5, 3}, at::kHalf);
  weights::load_mapped({{"a", ta}, {"t", tt}, {"stacked", stacked}}, {file}, m);
  EXPECT_TRUE(at::equal(ta, a.to(at::kDouble)));
  EXPECT_TRUE(at::equal(tt, a.t().to(at::kFloat)));
  EXPECT_TRUE(at::equal(stacked, at::stack({e0, e1}).to(at::kHalf)));
}

const char* const kLlamaConfig = R"({"model_type": "llama", "hidden_size": 64,
  "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "vocab_size": 100, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
  "tie_word_embeddings": false, "hidden_act": "silu", "max_position_embeddings": 128})";

// `blockc forward --weights FOLDER` loads a Hugging Face folder with its family's table, after
// comparing config.json's architecture with the model's.
TEST(Mapping, BlockcForwardChecksAHuggingFaceFoldersArchitecture) {
  const fs::path dir = scratch();
  fs::create_directories(dir / "hf");
  std::ofstream(dir / "hf" / "config.json") << kLlamaConfig;
  auto r = blockc("import hf " + (dir / "hf").string() + " -o " + (dir / "model.yaml").string());
  ASSERT_EQ(r.code, 0) << r.err;
  config::Diagnostics diagnostics;
  auto doc = config::load_document((dir / "model.yaml").string(), registry(), diagnostics);
  ASSERT_TRUE(doc) << diagnostics.format();
  Model model = build_model(*doc->model);
  nn::initialize(model.parameters, 11);
  write(dir / "hf" / "model.safetensors",
        weights::export_mapped(named(model), weights::hf_mapping("llama")));
  const at::Tensor ids = at::randint(0, 100, {2, 6}, test_generator(), at::TensorOptions().dtype(at::kLong));
  const std::string io = " --input " + write(dir / "in.safetensors", {{"tokens", ids}}) +
                         " --output " + (dir / "out.safetensors").string();

  r = blockc("forward --model " + (dir / "model.yaml").string() + " --weights " +
             (dir / "hf").string() + io);
  ASSERT_EQ(r.code, 0) << r.err;
  model.module->eval();
  EXPECT_TRUE(
      close(weights::SafetensorsFile::open((dir / "out.safetensors").string()).tensor("logits"),
            model.module->forward(ids).logits.detach(), 1e-5, 1e-5));

  fs::remove(dir / "out.safetensors");
  r = blockc("forward --model " + (dir / "model.yaml").string() +
             " --set model.hidden_size=32 --set model.decoder.block.mixer.heads=2"
             " --set model.decoder.block.mixer.head_groups=1 --weights " +
             (dir / "hf").string() + io);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("the model's architecture differs from the checkpoint's (" +
                               (dir / "hf" / "config.json").string() + "):"));
  EXPECT_THAT(r.err, HasSubstr("  model.hidden_size: model 32, checkpoint 64\n"));
  EXPECT_THAT(r.err, HasSubstr("  model.decoder.block.mixer.heads: model 2, checkpoint 4\n"));
  EXPECT_THAT(r.err, HasSubstr("  model.decoder.block.mixer.head_groups: model 1, checkpoint 2"));
  EXPECT_FALSE(fs::exists(dir / "out.safetensors"));
}

// `blockc init` writes the resolved document as "blocks_config" metadata; forward compares it.
TEST(Mapping, BlockcForwardChecksInitsBlocksConfigMetadata) {
  const fs::path dir = scratch();
  const std::string small =
      " --set model.hidden_size=64 --set model.decoder.num_layers=2"
      " --set model.decoder.block.mixer.heads=4 --set model.decoder.block.mlp.intermediate_size=128"
      " --set model.embeddings.vocab_size=100 --set model.embeddings.max_positions=32";
  const std::string weights = (dir / "w.safetensors").string();
  auto r = blockc("init " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml" + small + " -o " + weights);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto& meta = weights::SafetensorsFile::open(weights).metadata();
  ASSERT_TRUE(meta.count("blocks_config"));
  EXPECT_THAT(meta.at("blocks_config"), HasSubstr("\"hidden_size\":64"));
  const std::string io = " --input " +
                         write(dir / "in.safetensors", {{"tokens", at::zeros({1, 3}, at::kLong)}}) +
                         " --output " + (dir / "out.safetensors").string();
  r = blockc("forward --model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml" + small + " --weights " +
             weights + io);
  EXPECT_EQ(r.code, 0) << r.err;
  r = blockc("forward --model " BLOCKS_SOURCE_DIR "/configs/gpt2.yaml" + small +
             " --set model.decoder.block.mixer.heads=8 --weights " + weights + io);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err,
              HasSubstr("the model's architecture differs from the checkpoint's (" + weights +
                        "):\n  model.decoder.block.mixer.heads: model 8, "
                        "checkpoint 4"));
}

}  // namespace
}  // namespace blocks::testing
