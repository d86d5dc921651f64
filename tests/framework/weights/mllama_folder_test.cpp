// A tiny Llama 3.2 Vision folder written by python3-torch in transformers' on-disk layout
// (tests/support/mllama_reference.py: config.json with an mllama_text_model text_config whose
// cross-attention layers 1 and 4 interleave with 4 self-attention layers, model.safetensors
// with MllamaForConditionalGeneration's names and some of the vision tower's), and the same
// tensors in the newer in-memory layout: `blockc import hf` gives a deep_fusion model, and
// `blockc forward --model FOLDER` with the vision tower's output and Hugging Face's
// cross_attention_mask gives the logits of a plain-PyTorch re-implementation of
// modeling_mllama.py to 1e-4, with a text row that sees no image.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/blockc_run.h"
#include "tests/support/reference_folder.h"
#include "tests/support/temp_dir.h"
#include "tests/support/torch_support.h"

namespace blocks::testing {
namespace {

const char* kWriter = R"(
import os, sys
sys.path.insert(0, os.path.join(SOURCE, "tests/support"))
from mllama_reference import write_tiny_folder, conditional_forward, in_memory_names
from tensors import save
config, p = write_tiny_folder(os.path.join(DIR, "disk"))
os.makedirs(os.path.join(DIR, "memory"))
import json, shutil
shutil.copy(os.path.join(DIR, "disk", "config.json"), os.path.join(DIR, "memory", "config.json"))
save(in_memory_names(p), os.path.join(DIR, "memory", "model.safetensors"))
g = torch.Generator().manual_seed(1)
b, t, images, tiles = 2, 7, 2, 2
ids = torch.randint(0, 50, (b, t), generator=g)
ids[:, 1] = 50                                    # <|image|>
features = torch.randn(b, images, tiles, 5, 24, generator=g)
mask = torch.ones(b, t, images, tiles, dtype=torch.long)
mask[0, 0] = 0                                    # text before the image sees nothing
mask[1, :, 1, 1] = 0                              # a padded tile
mask[1, 3:, 0] = 0                                # later tokens see the second image only
save({"input_ids": ids, "vision_features": features.reshape(b, images * tiles, 5, 24),
      "cross_attention_mask": mask}, os.path.join(DIR, "in.safetensors"))
save({"logits": conditional_forward(p, config, ids, features, mask)},
     os.path.join(DIR, "ref.safetensors"))
# Greedy decoding as transformers' generate() runs mllama, without a cache: the whole sequence
# each step, the cross_attention_mask grown by its last row per new token
# (MllamaForConditionalGeneration._update_model_kwargs_for_generation).
seq, m, new = ids, mask, []
for _ in range(6):
    nxt = conditional_forward(p, config, seq, features, m)[:, -1].argmax(-1)
    new.append(nxt.tolist())
    seq = torch.cat([seq, nxt[:, None]], 1)
    m = torch.cat([m, m[:, -1:]], 1)
json.dump({"ids": [list(r) for r in zip(*new)]}, open(os.path.join(DIR, "generated.json"), "w"))
save({"input_ids": ids}, os.path.join(DIR, "text.in.safetensors"))
save({"logits": conditional_forward(p, config, ids)}, os.path.join(DIR, "text.ref.safetensors"))
)";

class MllamaFolder : public SharedReferenceFolder<MllamaFolder> {
 public:
  static const char* script() { return kWriter; }
};

TEST_F(MllamaFolder, ImportGivesADeepFusionModelWithTheCrossLayersBeforeDecoderLayers) {
  const auto r = blockc("import hf " + at("disk"));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* line :
       {"type: deep_fusion", "num_layers: 4", "every: 2", "placement: before",
        "unattended_rows: skip_mlp", "fusion_vocab_size: 8", "type: features", "width: 24",
        "tokens: 5", "input: vision_features"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
}

TEST_F(MllamaFolder, ForwardMatchesThePlainPyTorchReference) {
  for (const char* layout : {"disk", "memory"})
    for (const char* name : {"", "text."}) {
      const std::string out = at(std::string(layout) + "." + name + "out.safetensors");
      const auto r = blockc("forward --model " + at(layout) + " --input " +
                            at(std::string(name) + "in.safetensors") + " --output " + out);
      ASSERT_EQ(r.code, 0) << layout << " " << name << ": " << r.err;
      const at::Tensor logits = weights::SafetensorsFile::open(out).tensor("logits");
      const at::Tensor expected =
          weights::SafetensorsFile::open(at(std::string(name) + "ref.safetensors")).tensor("logits");
      EXPECT_TRUE(close(logits, expected, 0, 1e-4)) << layout << " " << name;
      std::cerr << layout << " " << name << ": max |blocks - reference| = "
                << (logits - expected).abs().max().item<double>() << "\n";
      EXPECT_NE(r.err.find("vision_model.*: skipped"), std::string::npos) << r.err;
    }
}

// blockc generate with the --prompt-tokens file's vision features and HF's cross_attention_mask
// given at prefill only (the memory's keys and values cached, later tokens reusing the mask's
// last row) gives the ids of transformers' loop recomputing everything each step.
TEST_F(MllamaFolder, GenerateGivesTheMemoryAtPrefillOnly) {
  const auto r = blockc("generate --model " + at("disk") + " --prompt-tokens " +
                        at("in.safetensors") + " --greedy --max-new-tokens 6 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  std::vector<std::vector<int64_t>> ids;
  for (const auto& row : json["rows"]) ids.push_back(row["ids"].get<std::vector<int64_t>>());
  std::ifstream in(at("generated.json"));
  EXPECT_EQ(ids, nlohmann::json::parse(in)["ids"].get<std::vector<std::vector<int64_t>>>());
}

}  // namespace
}  // namespace blocks::testing
