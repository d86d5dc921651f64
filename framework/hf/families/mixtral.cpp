// mixtral: MixtralConfig (configuration_mixtral.py): Mistral's attention with a sparse MoE of
// SwiGLU experts (MixtralSparseMoeBlock: softmax router, top k renormalized), its per-expert
// w1/w3/w2 stacked into blocks' [experts, out, in].
#include "framework/hf/families/llama.h"

namespace blocks::hf {
namespace {

using A = Architecture;

Family mixtral() {
  Family f;
  f.model_type = "mixtral";
  f.class_name = "MixtralForCausalLM";
  f.export_order = 40;
  Architecture& a = f.defaults;  // MixtralConfig
  a.vocab_size = 32000;
  a.hidden_size = 4096;
  a.intermediate_size = 14336;
  a.num_layers = 32;
  a.heads = 32;
  a.head_groups = 8;
  a.norm_epsilon = 1e-5;
  a.rope.theta = 1000000.0;
  a.mlp = "moe";
  a.experts = 8;
  a.top_k = 2;
  a.aux_loss_coefficient = 0.001;
  f.keys = join_keys({
      common_keys(),
      llama_core_keys(),
      {uniform_window_key(),
       size("num_local_experts", &A::experts, "mlp.experts"),
       size("num_experts_per_tok", &A::top_k, "mlp.top_k"),
       field("router_aux_loss_coef", &A::aux_loss_coefficient, "mlp.aux_loss_coefficient"),
       field("router_jitter_noise", &A::jitter, "mlp.jitter"),
       {"output_router_logits", nullptr, nullptr,
        "whether forward returns router logits; the loss weight is router_aux_loss_coef"}},
  });
  f.tensors = llama_attention_and_norm_names();
  const std::string moe = std::string(kLlamaLayer) + R"(block_sparse_moe\.)";
  f.tensors.push_back({moe + R"(gate\.weight)", {"decoder.$1.mlp.router.weight"}});
  for (const auto& [hf, blocks] : {std::pair{"w1", "gate"}, {"w3", "up"}, {"w2", "down"}})
    f.tensors.push_back({moe + R"(experts\.(\d+)\.)" + hf + R"(\.weight)",
                         {std::string("decoder.$1.mlp.") + blocks + ".weight"},
                         false,
                         0,
                         /*stack_capture=*/2});  // experts.{e} -> [e]
  f.rope_types = {"default", "llama3", "yarn"};
  f.mlp = "moe";
  f.windows = Windows::uniform;
  return f;
}

}  // namespace
}  // namespace blocks::hf

namespace blocks {
void register_hf_mixtral(hf::Families& families) { families.add(hf::mixtral()); }
}  // namespace blocks
