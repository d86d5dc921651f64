// What the Llama-style families (mistral, mixtral, qwen2, gemma, phi3) share with llama: the
// keys of LlamaConfig's core and the checkpoint names of LlamaModel's attention and norms.
#pragma once

#include <string>
#include <vector>

#include "framework/hf/family.h"

namespace blocks::hf {

// Sizes, heads, activation (hidden_act), rms_norm_eps, rotary, attention dropout, tied head and
// the context length (following configuration_llama.py).
Keys llama_core_keys();

// sliding_window as Mistral says it: one window (or null) for every layer.
Key uniform_window_key();

// `model.layers.(\d+).` of LlamaModel's state dict.
extern const char* const kLlamaLayer;

// Embeddings, attention (q/k/v/o, with biases where present), norms and the head of
// modeling_llama.py's state dict.
std::vector<TensorName> llama_attention_and_norm_names();

// LlamaMLP: gate_proj, up_proj, down_proj.
std::vector<TensorName> llama_mlp_names();

}  // namespace blocks::hf
