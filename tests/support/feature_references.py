"""Plain-PyTorch references for the config-language features the Gemma and YaRN families need,
written the way transformers computes them (not from blocks' code): the embedding normalizer
and GemmaRMSNorm of models/gemma/modeling_gemma.py, YaRN's _compute_yarn_parameters of
modeling_rope_utils.py (v4.55 and later, which added `truncate`), the rotary application of
modeling_llama.py, torchscale's XPOS (component/xpos_relative_position.py), and a whole Gemma-1
forward reading parameters by blocks' names."""
import math

import torch
import torch.nn.functional as F

import reference_models
from reference_models import gemma_rms_norm, rotate_half  # noqa: F401 (gemma_rms_norm: for tests)


def scale_embeddings(x, scale):
    # GemmaModel.forward: normalizer = torch.tensor(hidden_size**0.5, dtype=hidden_states.dtype)
    return x * torch.tensor(scale, dtype=x.dtype)


def yarn_inv_freq(theta, dim, factor, original, beta_fast=32, beta_slow=1, attention_factor=None,
                  truncate=True):
    """_compute_yarn_parameters with its config reads replaced by arguments: the inverse
    frequencies [dim / 2] and the factor that scales cos and sin."""
    if attention_factor is None:
        attention_factor = 1.0 if factor <= 1 else 0.1 * math.log(factor) + 1.0

    def find_correction_dim(num_rotations):
        return (dim * math.log(original / (num_rotations * 2 * math.pi))) / (2 * math.log(theta))

    low, high = find_correction_dim(beta_fast), find_correction_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = theta ** (torch.arange(0, dim, 2).float() / dim)
    extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
    keep = 1 - ramp
    return interpolation * (1 - keep) + extrapolation * keep, attention_factor


def rotary_cos_sin(inv_freq, positions, attention_factor):
    """LlamaRotaryEmbedding.forward: positions [B, T] -> cos, sin [B, T, 1, D] (half layout)."""
    freqs = positions.float()[..., None] * inv_freq.float()
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * attention_factor)[:, :, None], (emb.sin() * attention_factor)[:, :, None]


def rotate(x, cos, sin, layout):
    """x [B, T, H, D]; `half` as apply_rotary_pos_emb, `interleaved` on pairs (2i, 2i + 1)."""
    if layout == "half":
        return x * cos + rotate_half(x) * sin
    d = x.shape[-1]
    c, s = cos[..., : d // 2], sin[..., : d // 2]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * c - b * s, a * s + b * c), -1).flatten(-2)


def gemma(p, tokens, layers, heads, groups, head_size, theta, eps=1e-6):
    """reference_models.gemma (GemmaForCausalLM) on a state dict in blocks' names."""
    hf = {"model.embed_tokens.weight": p["embeddings.word.weight"],
          "model.norm.weight": p["head.normalization.weight"]}
    names = {"normalization": "input_layernorm", "mlp_normalization": "post_attention_layernorm",
             "mixer.query": "self_attn.q_proj", "mixer.key": "self_attn.k_proj",
             "mixer.value": "self_attn.v_proj", "mixer.output": "self_attn.o_proj",
             "mlp.gate": "mlp.gate_proj", "mlp.up": "mlp.up_proj", "mlp.down": "mlp.down_proj"}
    for i in range(layers):
        for ours, theirs in names.items():
            hf[f"model.layers.{i}.{theirs}.weight"] = p[f"decoder.{i}.{ours}.weight"]
    return reference_models.gemma(hf, tokens, layers, heads, groups, head_size, theta, eps)


def torchscale_xpos(x, scale_base, offset=0, downscale=False):
    """torchscale's XPOS.forward on x [length, head_dim] (one head; torchscale folds heads into
    the batch), with fixed_pos_embedding, rotate_every_two and duplicate_interleave inlined."""
    length, head_dim = x.shape
    scale = (torch.arange(0, head_dim, 2) + 0.4 * head_dim) / (1.4 * head_dim)
    min_pos = -(length + offset) // 2
    max_pos = length + offset + min_pos
    scale = scale ** torch.arange(min_pos, max_pos, 1).to(scale).div(scale_base)[:, None]
    seq_len, dim = scale.shape
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim) / dim))
    sinusoid = torch.einsum("i , j -> i j", torch.arange(0, seq_len, dtype=torch.float), inv_freq)
    sin, cos = torch.sin(sinusoid), torch.cos(sinusoid)
    if scale.shape[0] > length:
        scale, sin, cos = scale[-length:], sin[-length:], cos[-length:]
    if downscale:
        scale = 1 / scale

    def interleave(m):
        return m.view(-1, 1).repeat(1, 2).view(m.shape[0], -1)

    sin, cos = interleave(sin * scale), interleave(cos * scale)
    x1, x2 = x[:, ::2], x[:, 1::2]
    rotated = torch.stack((-x2, x1), dim=-1).flatten(-2)
    return x * cos + rotated * sin
