// What a Hugging Face config.json describes, family-independent: the meeting point of import
// (family keys -> Architecture -> blocks document) and export (blocks document -> Architecture
// -> family keys). Each family starts from its transformers class defaults, so an absent key
// means the default, as in from_pretrained.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/config/node.h"

namespace blocks::hf {

// Rotary positions as blocks' `rotary` says them (transformers' rope_init_fns).
struct Rotary {
  std::string type = "default";  // default, llama3 or yarn
  double theta = 10000.0;
  double factor = 1.0;                                   // llama3, yarn: scale_factor
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_context = 0;                          // llama3, yarn
  double beta_fast = 32.0, beta_slow = 1.0;              // yarn
  std::optional<double> attention_factor;                // yarn; null: 0.1 ln(factor) + 1
  bool truncate = true;                                  // yarn: round the ramp's ends
};

struct Architecture {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // 0: 4 * hidden_size (GPT-2's n_inner null)
  int64_t num_layers = 0;
  int64_t heads = 0;
  int64_t head_groups = 0;          // 0: heads (num_key_value_heads null)
  int64_t head_size = 0;            // 0: hidden_size / heads (head_dim null)
  std::string activation = "silu";  // already a blocks activation name
  std::string mlp = "gated";        // gated (Llama-style), mlp (GPT-2) or moe (Mixtral)
  std::string normalization = "rms_norm";
  double norm_epsilon = 1e-6;
  double norm_weight_offset = 0.0;  // Gemma: x / rms * (1 + weight)
  bool scale_embeddings = false;    // Gemma: embeddings times sqrt(hidden_size)
  int64_t learned_positions = 0;    // GPT-2's position table; 0: none
  bool rotary = true;
  Rotary rope;  // resolved from rope_theta and rope_scaling / rope_parameters
  bool query_bias = false, key_bias = false, value_bias = false, output_bias = false;
  bool mlp_bias = false;
  // The window of each layer (0: none), resolved from the family's keys below.
  std::vector<int64_t> windows;
  // Qwen2 decides windows per layer: layer i uses sliding_window when use_sliding_window and
  // layer_types[i] is sliding_attention (without layer_types: i >= max_window_layers).
  // Mistral and Mixtral are the case max_window_layers 0: every layer.
  int64_t sliding_window = 0;  // 0: none
  bool use_sliding_window = true;
  int64_t max_window_layers = 0;
  double attention_dropout = 0.0, embedding_dropout = 0.0, residual_dropout = 0.0;
  bool scale_attention = true;  // false: logits are not divided by sqrt(head_size)
  int64_t experts = 0;          // > 0: a Mixtral MoE
  int64_t top_k = 2;
  double aux_loss_coefficient = 0.0, jitter = 0.0;
  bool tied = false;
  std::optional<double> init_std = 0.02;  // export: absent unless the document says it
  // Export only: what config.json states beside the architecture (ExportOptions).
  std::optional<int64_t> max_position_embeddings;
  std::string torch_dtype;
  // Import only: nodes read after every key (they need other keys first).
  const config::Node* rope_scaling = nullptr;  // transformers < 5 name of rope_parameters
  const config::Node* rope_parameters = nullptr;
  const config::Node* layer_types = nullptr;
};

}  // namespace blocks::hf
