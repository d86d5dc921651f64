// A tiny LLaVA folder written by python3-torch in transformers' on-disk layout (config.json with
// llama text_config and clip_vision_model vision_config, model.safetensors with
// LlavaForConditionalGeneration's names), and the same weights in the newer in-memory layout:
// `blockc forward --model FOLDER` gives the logits of a plain-PyTorch reference (CLIP tower and
// LLaVA projector as modeling_clip.py and modeling_llava.py compute them, features of layer -2
// without the class token written over the image placeholders, then Llama) to 1e-4, with one
// image, two images in one row and a batch of two.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "framework/hf/config.h"
#include "tests/support/blockc_run.h"
#include "tests/support/reference_folder.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

namespace fs = std::filesystem;

// Writes DIR/disk (on-disk layout) and DIR/memory (in-memory layout), the inputs and the
// reference logits; returns false when the script failed (reported).
const char* kWriter = R"(
import json, os, sys
sys.path.insert(0, os.path.join(SOURCE, "tests/support"))
from reference_models import llama
from vision_references import clip_hidden_states, llava_projector
from tensors import save
g = torch.Generator().manual_seed(0)
r = lambda *s: torch.randn(*s, generator=g) * 0.2
V = dict(model_type="clip_vision_model", hidden_size=24, intermediate_size=48,
         num_hidden_layers=3, num_attention_heads=2, image_size=8, patch_size=4,
         projection_dim=16)
T = dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
         num_attention_heads=4, num_key_value_heads=2, vocab_size=50, rms_norm_eps=1e-5,
         max_position_embeddings=64, rope_theta=10000.0, tie_word_embeddings=False)
config = dict(model_type="llava", architectures=["LlavaForConditionalGeneration"],
              image_token_index=49, vision_feature_layer=-2,
              vision_feature_select_strategy="default", projector_hidden_act="gelu",
              image_seq_length=4, text_config=T, vision_config=V, torch_dtype="float32")
hf = {}
v = "vision_tower.vision_model."
hf[v + "embeddings.class_embedding"] = r(24)
hf[v + "embeddings.patch_embedding.weight"] = r(24, 3, 4, 4)
hf[v + "embeddings.position_embedding.weight"] = r(5, 24)
for n in ["pre_layrnorm", "post_layernorm"]:
    hf[v + n + ".weight"], hf[v + n + ".bias"] = 1 + r(24), r(24)
for i in range(3):
    l = v + "encoder.layers.%d." % i
    for p in ["q_proj", "k_proj", "v_proj", "out_proj"]:
        hf[l + "self_attn." + p + ".weight"], hf[l + "self_attn." + p + ".bias"] = r(24, 24), r(24)
    for n in ["layer_norm1", "layer_norm2"]:
        hf[l + n + ".weight"], hf[l + n + ".bias"] = 1 + r(24), r(24)
    hf[l + "mlp.fc1.weight"], hf[l + "mlp.fc1.bias"] = r(48, 24), r(48)
    hf[l + "mlp.fc2.weight"], hf[l + "mlp.fc2.bias"] = r(24, 48), r(24)
m = "multi_modal_projector."
hf[m + "linear_1.weight"], hf[m + "linear_1.bias"] = r(32, 24), r(32)
hf[m + "linear_2.weight"], hf[m + "linear_2.bias"] = r(32, 32), r(32)
t = "language_model.model."
hf[t + "embed_tokens.weight"] = r(50, 32)
for i in range(2):
    l = t + "layers.%d." % i
    hf[l + "self_attn.q_proj.weight"] = r(32, 32)
    hf[l + "self_attn.k_proj.weight"] = r(16, 32)
    hf[l + "self_attn.v_proj.weight"] = r(16, 32)
    hf[l + "self_attn.o_proj.weight"] = r(32, 32)
    hf[l + "mlp.gate_proj.weight"], hf[l + "mlp.up_proj.weight"] = r(64, 32), r(64, 32)
    hf[l + "mlp.down_proj.weight"] = r(32, 64)
    hf[l + "input_layernorm.weight"] = 1 + r(32)
    hf[l + "post_attention_layernorm.weight"] = 1 + r(32)
hf[t + "norm.weight"] = 1 + r(32)
hf["language_model.lm_head.weight"] = r(50, 32)

def write(folder, tensors):
    os.makedirs(folder, exist_ok=True)
    json.dump(config, open(os.path.join(folder, "config.json"), "w"))
    save(tensors, os.path.join(folder, "model.safetensors"))
write(os.path.join(DIR, "disk"), hf)
def newer(k):
    if k.startswith("language_model.model."): return "model.language_model." + k[21:]
    if k == "language_model.lm_head.weight": return "lm_head.weight"
    return "model." + k
write(os.path.join(DIR, "memory"), {newer(k): x for k, x in hf.items()})

# The reference, from the HF names renamed by hand to the references' own.
clip = {}
for k, x in hf.items():
    if not k.startswith(v): continue
    k = k[len(v):].replace("embeddings.", "").replace("encoder.layers.", "body.")
    k = k.replace("pre_layrnorm", "pre_normalization").replace("class_embedding", "class_embedding.weight")
    k = k.replace("patch_embedding.weight", "patch_embedding.weight")
    for a, b in [("self_attn.q_proj", "mixer.query"), ("self_attn.k_proj", "mixer.key"),
                 ("self_attn.v_proj", "mixer.value"), ("self_attn.out_proj", "mixer.output"),
                 ("layer_norm1", "normalization"), ("layer_norm2", "mlp_normalization"),
                 ("mlp.fc1", "mlp.up"), ("mlp.fc2", "mlp.down")]:
        k = k.replace(a, b)
    clip[k] = x
proj = {"up.weight": hf[m + "linear_1.weight"], "up.bias": hf[m + "linear_1.bias"],
        "down.weight": hf[m + "linear_2.weight"], "down.bias": hf[m + "linear_2.bias"]}
lm = {"embeddings.word.weight": hf[t + "embed_tokens.weight"],
      "head.normalization.weight": hf[t + "norm.weight"],
      "head.output.weight": hf["language_model.lm_head.weight"]}
for i in range(2):
    l = t + "layers.%d." % i
    for a, b in [("self_attn.q_proj", "mixer.query"), ("self_attn.k_proj", "mixer.key"),
                 ("self_attn.v_proj", "mixer.value"), ("self_attn.o_proj", "mixer.output"),
                 ("mlp.gate_proj", "mlp.gate"), ("mlp.up_proj", "mlp.up"),
                 ("mlp.down_proj", "mlp.down")]:
        lm["decoder.%d.%s.weight" % (i, b)] = hf[l + a + ".weight"]
    lm["decoder.%d.normalization.weight" % i] = hf[l + "input_layernorm.weight"]
    lm["decoder.%d.mlp_normalization.weight" % i] = hf[l + "post_attention_layernorm.weight"]

def logits(tokens, pixels):
    states = clip_hidden_states(clip, pixels, patch=4, layers=2, heads=2)
    features = llava_projector(proj, states[2][:, 1:]).reshape(-1, 32)
    embeds = lm["embeddings.word.weight"][tokens].clone()
    embeds[tokens == 49] = features  # row-major, as modeling_llava.py's masked_scatter
    return llama(lm, tokens, 2, 4, 2, 8, 10000.0, embeds=embeds)

P = 49
cases = {
    "one": torch.tensor([[1, P, P, P, P, 5, 6, 7]]),
    "two_in_a_row": torch.tensor([[1, P, P, P, P, 5, P, P, P, P, 6, 7]]),
    "batch": torch.tensor([[1, P, P, P, P, 5, P, P, P, P, 6, 7],
                           [3, 4, 8, P, P, P, P, 9, 10, 11, 12, 13]]),
}
# The same weights as parts: a Llama folder, a CLIP vision folder, the projector in blocks' names.
def part(folder, cfg, tensors):
    os.makedirs(folder, exist_ok=True)
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    save(tensors, os.path.join(folder, "model.safetensors"))
part(os.path.join(DIR, "llama"), dict(T, architectures=["LlamaForCausalLM"]),
     {k[len("language_model."):]: x for k, x in hf.items() if k.startswith("language_model.")})
part(os.path.join(DIR, "clip"), dict(V, architectures=["CLIPVisionModel"]),
     {k[len("vision_tower."):]: x for k, x in hf.items() if k.startswith("vision_tower.")})
# The same tensors under towers that compute otherwise: shapes cannot tell.
part(os.path.join(DIR, "clip_other"), dict(V, hidden_act="gelu", num_attention_heads=4),
     {k[len("vision_tower."):]: x for k, x in hf.items() if k.startswith("vision_tower.")})
save(proj, os.path.join(DIR, "projector.safetensors"))
# The projector under LLaVA's names, for a --map of one component.
save({k: x for k, x in hf.items() if k.startswith(m)}, os.path.join(DIR, "projector_hf.safetensors"))
open(os.path.join(DIR, "projector_map.yaml"), "w").write(
    "rules:\n  - {from: 'multi_modal_projector\\.linear_1\\.(weight|bias)', to: up.$1}\n"
    "  - {from: 'multi_modal_projector\\.linear_2\\.(weight|bias)', to: down.$1}\n")
# The CLIP folder alone (CLIPVisionModel): last_hidden_state, every token of layer 3.
pixels = torch.randn(2, 3, 8, 8, generator=g)
save({"pixel_values": pixels}, os.path.join(DIR, "pixels.in.safetensors"))
save({"features": clip_hidden_states(clip, pixels, patch=4, layers=3, heads=2)[3]},
     os.path.join(DIR, "pixels.ref.safetensors"))

# --image: two PNGs of other sizes, prepared by Pillow as CLIPImageProcessor does, into a
# prompt with one placeholder per image (LlavaProcessor expands each to image_seq_length).
try:
    import numpy as np
    from PIL import Image
    from image_references import clip_pixels
    json.dump({"image_processor_type": "CLIPImageProcessor", "do_resize": True,
               "size": {"shortest_edge": 8}, "do_center_crop": True,
               "crop_size": {"height": 8, "width": 8}, "do_rescale": True,
               "rescale_factor": 1 / 255, "do_normalize": True, "resample": 3,
               "image_mean": [0.48145466, 0.4578275, 0.40821073],
               "image_std": [0.26862954, 0.26130258, 0.27577711]},
              open(os.path.join(DIR, "disk", "preprocessor_config.json"), "w"))
    rng = np.random.default_rng(1)
    paths = []
    for i, (w, h) in enumerate([(20, 12), (9, 15)]):
        paths.append(os.path.join(DIR, "image%d.png" % i))
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    pixels = torch.stack([torch.from_numpy(clip_pixels(p, 8, 8, 8)) for p in paths])
    prompt = torch.tensor([[1, P, 5, P, 6]])
    save({"tokens": prompt}, os.path.join(DIR, "prompt.in.safetensors"))
    expanded = torch.tensor([[1, P, P, P, P, 5, P, P, P, P, 6]])
    save({"logits": logits(expanded, pixels)}, os.path.join(DIR, "prompt.ref.safetensors"))
    # Greedy decoding without a cache: the whole sequence and both images every step. blocks
    # never chooses the placeholder (no image would stand behind it), so neither does this.
    ids, new = expanded, []
    for _ in range(6):
        last = logits(ids, pixels)[0, -1].clone()
        last[P] = float("-inf")
        new.append(int(last.argmax()))
        ids = torch.cat([ids, torch.tensor([[new[-1]]])], 1)
    json.dump({"ids": new}, open(os.path.join(DIR, "prompt.generated.json"), "w"))
    save({"tokens": torch.tensor([[1, 5, 6]])}, os.path.join(DIR, "plain.in.safetensors"))
    save({"tokens": torch.tensor([[P, 1, 5, 6]])}, os.path.join(DIR, "first.in.safetensors"))
except ImportError:
    pass  # no python3-pil: the --image test says so

for name, tokens in cases.items():
    images = int((tokens == P).sum()) // 4
    pixels = torch.randn(images, 3, 8, 8, generator=g)
    save({"tokens": tokens, "pixel_values": pixels}, os.path.join(DIR, name + ".in.safetensors"))
    save({"logits": logits(tokens, pixels)}, os.path.join(DIR, name + ".ref.safetensors"))
)";

class LlavaFolder : public SharedReferenceFolder<LlavaFolder> {
 public:
  static const char* script() { return kWriter; }

 protected:
  static at::Tensor tensor(const std::string& file, const std::string& name) {
    return weights::SafetensorsFile::open(at(file)).tensor(name).clone();
  }
};

TEST_F(LlavaFolder, ForwardMatchesThePlainPyTorchReference) {
  for (const char* layout : {"disk", "memory"}) {
    for (const char* name : {"one", "two_in_a_row", "batch"}) {
      const std::string out = at(std::string(layout) + "." + name + ".out.safetensors");
      const auto r = blockc("forward --model " + at(layout) + " --input " +
                            at(std::string(name) + ".in.safetensors") + " --output " + out);
      ASSERT_EQ(r.code, 0) << layout << " " << name << ": " << r.err;
      const at::Tensor logits = weights::SafetensorsFile::open(out).tensor("logits");
      const at::Tensor expected = tensor(std::string(name) + ".ref.safetensors", "logits");
      EXPECT_TRUE(close(logits, expected, 0, 1e-4)) << layout << " " << name;
      std::cerr << layout << " " << name << ": max |blocks - reference| = "
                << (logits - expected).abs().max().item<double>() << "\n";
      // The tower's unused last layer and post_layernorm are skipped by rule, and said so.
      EXPECT_NE(r.err.find("vision tower layers 2-2 of the checkpoint are skipped: the model "
                           "reads the output of layer 2 and builds nothing past it"),
                std::string::npos)
          << r.err;
      EXPECT_NE(r.err.find("the vision tower's post_layernorm is skipped"), std::string::npos)
          << r.err;
    }
  }
}

// export --to hf writes the on-disk layout: every tensor the model holds under the name
// transformers' file had, equal, and a config.json that imports as the same model; the tower's
// unused layer 2 and post_layernorm are left out, and said so. The folder runs as the source.
TEST_F(LlavaFolder, ExportWritesTheOnDiskLayoutBack) {
  const std::string out = at("exported");
  for (const char* layout : {"disk", "memory"}) {
    const auto r = blockc(std::string("export --model ") + at(layout) + " --to hf --replace -o " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("omitted from the folder, as on load: vision tower layers 2-2 of the "
                         "checkpoint are skipped"),
              std::string::npos)
        << r.err;
    const auto source = weights::SafetensorsFile::open(at("disk/model.safetensors"));
    const auto written = weights::SafetensorsFile::open(out + "/model.safetensors");
    std::vector<std::string> expected;
    for (const auto& info : source.tensors())
      if (const std::string& name = info.name; name.find("encoder.layers.2.") == std::string::npos &&
          name.find("post_layernorm") == std::string::npos)
        expected.push_back(name);
    std::vector<std::string> names;
    for (const auto& info : written.tensors()) names.push_back(info.name);
    std::sort(names.begin(), names.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(names, expected) << layout;
    for (const auto& name : expected)
      EXPECT_TRUE(at::equal(written.tensor(name), source.tensor(name))) << layout << " " << name;
  }
  // The keys transformers reads, as the source had them.
  std::ifstream in(out + "/config.json");
  const auto config = config::Json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  EXPECT_EQ(config["model_type"], "llava");
  EXPECT_EQ(config["architectures"], config::Json::array({"LlavaForConditionalGeneration"}));
  EXPECT_EQ(config["image_token_index"], 49);
  EXPECT_EQ(config["image_seq_length"], 4);
  EXPECT_EQ(config["vision_feature_layer"], -2);
  EXPECT_EQ(config["vision_feature_select_strategy"], "default");
  EXPECT_EQ(config["projector_hidden_act"], "gelu");
  EXPECT_EQ(config["vision_config"].dump(),
            config::Json::parse(R"({"hidden_act": "quick_gelu", "hidden_size": 24,
                "image_size": 8, "intermediate_size": 48, "layer_norm_eps": 1e-05,
                "model_type": "clip_vision_model", "num_attention_heads": 2, "num_channels": 3,
                "num_hidden_layers": 3, "patch_size": 4})")
                .dump());
  EXPECT_EQ(config["text_config"]["model_type"], "llama");
  EXPECT_EQ(config["text_config"]["num_key_value_heads"], 2);
  // And it runs as the source did.
  const std::string logits = at("exported.one.out.safetensors");
  const auto r = blockc("forward --model " + out + " --input " + at("one.in.safetensors") +
                        " --output " + logits);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(close(weights::SafetensorsFile::open(logits).tensor("logits"),
                    tensor("one.ref.safetensors", "logits"), 0, 1e-4));
}

// A CLIP vision folder alone imports as an encoder_model and runs: its features are
// CLIPVisionModel's last_hidden_state (every token of the last layer, before post_layernorm,
// which is skipped and said so).
TEST_F(LlavaFolder, ClipFolderAloneIsAnEncoderModel) {
  const auto imported = blockc("import hf " + at("clip"));
  ASSERT_EQ(imported.code, 0) << imported.err;
  EXPECT_NE(imported.out.find("type: encoder_model"), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("feature_layers: [-1]"), std::string::npos) << imported.out;
  const std::string out = at("clip.features.safetensors");
  const auto r = blockc("forward --model " + at("clip") + " --input " +
                        at("pixels.in.safetensors") + " --output " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("the vision tower's post_layernorm is skipped"), std::string::npos) << r.err;
  const auto written = weights::SafetensorsFile::open(out);
  ASSERT_TRUE(written.contains("features"));
  EXPECT_FALSE(written.contains("logits"));
  const at::Tensor expected = tensor("pixels.ref.safetensors", "features");
  EXPECT_EQ(written.tensor("features").sizes(), (std::vector<int64_t>{2, 5, 24}));
  EXPECT_TRUE(close(written.tensor("features"), expected, 0, 1e-5));
  // Tokens are no input of a tower.
  const auto bad = blockc("forward --model " + at("clip") + " --input " +
                          at("one.in.safetensors") + " --output " + out);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("tokens"), std::string::npos) << bad.err;
}

// --image FILE: decoded, prepared from the folder's preprocessor_config.json, and each image
// placeholder of the prompt expanded to the run an image fills.
TEST_F(LlavaFolder, ImagesFromFilesMatchPillowAndTheReference) {
  if (!fs::exists(at("prompt.ref.safetensors"))) {
    if (std::getenv("BLOCKS_REQUIRE_REFERENCES")) FAIL() << "python3-pil is missing";
    GTEST_SKIP() << "python3-pil is not installed";
  }
  const std::string out = at("prompt.out.safetensors");
  const auto r = blockc("forward --model " + at("disk") + " --input " +
                        at("prompt.in.safetensors") + " --image " + at("image0.png") +
                        " --image " + at("image1.png") + " --output " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(close(weights::SafetensorsFile::open(out).tensor("logits"),
                    tensor("prompt.ref.safetensors", "logits"), 0, 1e-4));
  // One image for two placeholders, and a file that is not an image.
  auto bad = blockc("forward --model " + at("disk") + " --input " + at("prompt.in.safetensors") +
                    " --image " + at("image0.png") + " --output " + out);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("model: batch row 0, tokens [6, 10): placeholders for media item 1 of "
                         "encoder 'image', but 1 item was given"),
            std::string::npos)
      << bad.err;
  bad = blockc("forward --model " + at("disk") + " --input " + at("prompt.in.safetensors") +
               " --image " + at("disk/config.json") + " --image " + at("image1.png") +
               " --output " + out);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find(at("disk/config.json") + ": not a PNG or JPEG image"), std::string::npos)
      << bad.err;
}

// blockc generate --image: the images prepared as for forward and given at prefill only, the
// cache carrying their features, give the ids of the loop that runs the reference on the whole
// sequence and the images every step. A prompt without a placeholder gets the images first
// (after the BOS a tokenizer names; this folder has no tokenizer, so at the very start).
TEST_F(LlavaFolder, GenerateGivesTheImagesAtPrefillOnly) {
  if (!fs::exists(at("prompt.generated.json"))) {
    if (std::getenv("BLOCKS_REQUIRE_REFERENCES")) FAIL() << "python3-pil is missing";
    GTEST_SKIP() << "python3-pil is not installed";
  }
  auto ids = [](const BlockcResult& r) {
    return nlohmann::json::parse(r.out)["rows"][0]["ids"].get<std::vector<int64_t>>();
  };
  const std::string base = "generate --model " + at("disk") + " --greedy --max-new-tokens 6 --json";
  const auto r = blockc(base + " --prompt-tokens " + at("prompt.in.safetensors") + " --image " +
                        at("image0.png") + " --image " + at("image1.png"));
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(at("prompt.generated.json"));
  EXPECT_EQ(ids(r), nlohmann::json::parse(in)["ids"].get<std::vector<int64_t>>());

  const auto plain = blockc(base + " --prompt-tokens " + at("plain.in.safetensors") +
                            " --image " + at("image0.png"));
  const auto first = blockc(base + " --prompt-tokens " + at("first.in.safetensors") +
                            " --image " + at("image0.png"));
  ASSERT_EQ(plain.code, 0) << plain.err;
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(ids(plain), ids(first));

  const auto fewer = blockc(base + " --prompt-tokens " + at("prompt.in.safetensors") +
                            " --image " + at("image0.png"));
  EXPECT_EQ(fewer.code, 1);
  EXPECT_NE(fewer.err.find("the prompt holds 2 image placeholders (token 49) and --image gives 1 "
                           "image: give one placeholder per image, or none to put the images "
                           "first"),
            std::string::npos)
      << fewer.err;
  const auto text_only = blockc("generate --model " + at("llama") + " --prompt-tokens " +
                                at("plain.in.safetensors") + " --image " + at("image0.png") +
                                " --image-processor " + at("disk/preprocessor_config.json"));
  EXPECT_EQ(text_only.code, 1);
  EXPECT_NE(text_only.err.find("--image: the model takes no images (its inputs: tokens, "),
            std::string::npos)
      << text_only.err;
}

// Composing pretrained parts (LLaVA's first stage starts from CLIP and a Llama): each
// component from its own checkpoint through its own names, what no source gives initialized.
TEST_F(LlavaFolder, ComponentsLoadFromTheirOwnCheckpoints) {
  config::Diagnostics diagnostics;
  const std::string yaml = at("llava.yaml");
  std::ofstream(yaml) << *hf::import_yaml(at("disk"), diagnostics);
  const std::string parts = " --weights decoder=" + at("llama") +
                            " --weights encoders.image=" + at("clip");
  const std::string io = " --input " + at("one.in.safetensors") + " --output " + at("parts.out");
  auto r = blockc("forward --model " + yaml + parts + " --weights encoders.image.connectors.0=" +
                  at("projector.safetensors") + io);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(close(weights::SafetensorsFile::open(at("parts.out")).tensor("logits"),
                    tensor("one.ref.safetensors", "logits"), 0, 1e-4));
  EXPECT_NE(r.err.find("decoder: 21 tensors from " + at("llama") + " (llama names)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("encoders.image: the vision tower's post_layernorm is skipped"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("encoders.image.connectors.0: 4 tensors from " +
                       at("projector.safetensors") + " (blocks' names)"),
            std::string::npos)
      << r.err;
  // The projector in LLaVA's names, renamed by a mapping file of its own.
  r = blockc("forward --model " + yaml + parts + " --weights encoders.image.connectors.0=" +
             at("projector_hf.safetensors") + " --map encoders.image.connectors.0=" +
             at("projector_map.yaml") + io);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(close(weights::SafetensorsFile::open(at("parts.out")).tensor("logits"),
                    tensor("one.ref.safetensors", "logits"), 0, 1e-4));
  EXPECT_NE(r.err.find("encoders.image.connectors.0: 4 tensors from " +
                       at("projector_hf.safetensors") + " (names of " + at("projector_map.yaml") +
                       ")"),
            std::string::npos)
      << r.err;
  r = blockc("forward --model " + yaml + parts + " --map decoderx=" + at("projector_map.yaml") + io);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--map decoderx=" + at("projector_map.yaml") +
                       ": with --weights COMPONENT=PATH, give --map COMPONENT=MAP.yaml once for a "
                       "component given there"),
            std::string::npos)
      << r.err;
  // Without the projector's source it is initialized, and the log lists it.
  r = blockc("forward --model " + yaml + parts + io);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("initialized from seed 0 (4 tensors, no source gave them):\n"
                       "  model.encoders.image.connectors[0].down ("),
            std::string::npos)
      << r.err;
  r = blockc("forward --model " + yaml + " --weights nothing=" + at("llama") + io);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--weights nothing=" + at("llama") +
                       ": the model has no component `nothing` with parameters"),
            std::string::npos)
      << r.err;
  // A tower of the same shapes that computes otherwise is refused by its config.json.
  r = blockc("forward --model " + yaml + " --weights encoders.image=" + at("clip_other") + io);
  EXPECT_EQ(r.code, 1);
  for (const std::string& line :
       {"--weights encoders.image=" + at("clip_other") +
            ": the component's architecture differs from the checkpoint's (" +
            at("clip_other") + "/config.json):\n",
        std::string("\n  model.encoders.image.encoder.body.block.mixer.heads: model 2, "
                    "checkpoint 4\n"),
        std::string("\n  model.encoders.image.encoder.body.block.mlp.activation: model "
                    "\"quick_gelu\", checkpoint \"gelu\"")})
    EXPECT_NE(r.err.find(line), std::string::npos) << line << "\n" << r.err;
  // The tower's own choices (layer -2, no class token, built to layer 2) are no difference.
  EXPECT_EQ(r.err.find("feature_layers"), std::string::npos) << r.err;
  // A checkpoint of the wrong part: the Llama's names are unexpected in the tower.
  r = blockc("forward --model " + yaml + " --weights encoders.image=" + at("llama") + io);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("encoders.image from " + at("llama") +
                       ":\nunexpected in the checkpoint (21):\n"),
            std::string::npos)
      << r.err;
}

TEST_F(LlavaFolder, ImportSaysWhichClassDefaultsItUsed) {
  config::Diagnostics diagnostics;
  const auto yaml = hf::import_yaml(at("disk"), diagnostics);
  ASSERT_TRUE(yaml) << diagnostics.format();
  EXPECT_NE(yaml->find("# Class defaults used where the file is silent:\n"
                       "#   vision_config num_channels: 3 (CLIPVisionConfig)\n"
                       "#   vision_config hidden_act: quick_gelu (CLIPVisionConfig)\n"
                       "#   vision_config layer_norm_eps: 1e-05 (CLIPVisionConfig)\n"
                       "#   multimodal_projector_bias: true (LlavaConfig)\n"),
            std::string::npos)
      << *yaml;
  const config::Document doc = document(yaml->substr(yaml->find("version:")));
  const config::Json model = doc.dump()["model"];
  EXPECT_EQ(model["encoder_tokens"]["image"], 49);
  EXPECT_EQ(model["encoders"]["image"]["encoder"]["body"]["num_layers"], 2);
  EXPECT_EQ(model["encoders"]["image"]["encoder"]["num_layers"], 3);
  EXPECT_EQ(model["encoders"]["image"]["tokens"], 4);
  EXPECT_EQ(model["decoder"]["decoder"]["block"]["mixer"]["head_groups"], 2);
}

TEST_F(LlavaFolder, BadConfigsAreErrorsAtTheirKeys) {
  const auto errors_of = [&](const std::string& json) {
    const std::string path = at("bad.json");
    std::ofstream(path) << json;
    config::Diagnostics d;
    EXPECT_FALSE(hf::import_file(path, d));
    return d.format();
  };
  EXPECT_EQ(errors_of(R"({"model_type": "llava", "image_seq_length": 577,
  "vision_config": {"model_type": "clip_vision_model", "hiden_size": 8},
  "text_config": {"model_type": "llama", "num_attention_heads": 0}})"),
            at("bad.json") +
                ":1:45: error: hf.image_seq_length: 577 placeholders, but each image gives 49 "
                "features (7x7 patches)\n" +
                at("bad.json") +
                ":2:56: error: hf.vision_config.hiden_size: not a known clip_vision_model key; it "
                "may change the architecture; did you mean 'hidden_size'?\n" +
                at("bad.json") +
                ":3:65: error: hf.text_config.num_attention_heads: must be >= 1, found 0\n");
}

}  // namespace
}  // namespace blocks::testing
