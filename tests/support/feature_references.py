"""Plain-PyTorch references for the config-language features the Gemma and YaRN families need,
written the way transformers computes them (not from blocks' code): the embedding normalizer
and GemmaRMSNorm of models/gemma/modeling_gemma.py, YaRN's _compute_yarn_parameters of
modeling_rope_utils.py (v4.55 and later, which added `truncate`), the rotary application of
modeling_llama.py, and a whole Gemma-1 forward reading parameters by blocks' names."""
import math

import torch
import torch.nn.functional as F

from reference_models import causal_attention, rotate_half


def scale_embeddings(x, scale):
    # GemmaModel.forward: normalizer = torch.tensor(hidden_size**0.5, dtype=hidden_states.dtype)
    return x * torch.tensor(scale, dtype=x.dtype)


def gemma_rms_norm(x, weight, eps):
    # GemmaRMSNorm: float32 throughout, (1 + weight), one cast back at the end.
    xf = x.float()
    out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    out = out * (1.0 + weight.float())
    return out.type_as(x)


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
    """GemmaForCausalLM: scaled embeddings, (1 + weight) RMSNorms, GeGLU with tanh GELU, a head
    size of its own, the head tied to the embeddings."""
    b, t = tokens.shape
    hidden = p["embeddings.word.weight"].shape[1]
    x = scale_embeddings(p["embeddings.word.weight"][tokens], hidden ** 0.5)
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_size, 2, dtype=torch.int64).float() / head_size))
    cos, sin = rotary_cos_sin(inv_freq, torch.arange(t)[None], 1.0)
    cos, sin = cos.transpose(1, 2), sin.transpose(1, 2)  # [1, 1, T, D]
    for i in range(layers):
        w = lambda n: p[f"decoder.{i}.{n}"]
        h = gemma_rms_norm(x, w("normalization.weight"), eps)
        q = F.linear(h, w("mixer.query.weight")).view(b, t, heads, head_size).transpose(1, 2)
        k = F.linear(h, w("mixer.key.weight")).view(b, t, groups, head_size).transpose(1, 2)
        v = F.linear(h, w("mixer.value.weight")).view(b, t, groups, head_size).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // groups, dim=1)
        v = v.repeat_interleave(heads // groups, dim=1)
        a = causal_attention(q, k, v).transpose(1, 2).reshape(b, t, heads * head_size)
        x = x + F.linear(a, w("mixer.output.weight"))
        h = gemma_rms_norm(x, w("mlp_normalization.weight"), eps)
        gate = F.gelu(F.linear(h, w("mlp.gate.weight")), approximate="tanh")
        x = x + F.linear(gate * F.linear(h, w("mlp.up.weight")), w("mlp.down.weight"))
    x = gemma_rms_norm(x, p["head.normalization.weight"], eps)
    return x @ p["embeddings.word.weight"].T
