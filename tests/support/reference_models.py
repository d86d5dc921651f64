"""Plain-PyTorch reference implementations of GPT-2 and Llama, written the way Hugging Face's
modeling files compute them (not from blocks' code), reading parameters by blocks' names.
Used by the C++ tests to check whole models built from configs/*.yaml."""
import math

import torch
import torch.nn.functional as F


def causal_attention(q, k, v, window=None):
    # q [B, H, T, D], k/v [B, H, T, D]
    t = q.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    i = torch.arange(t)
    allowed = i[None, :] <= i[:, None]
    if window:
        allowed &= i[None, :] > i[:, None] - window
    scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1) @ v


def gpt2(p, tokens, layers, heads, eps=1e-5):
    b, t = tokens.shape
    x = p["embeddings.word.weight"][tokens] + p["embeddings.position.weight"][torch.arange(t)]
    d = x.shape[-1]
    for i in range(layers):
        w = lambda n: p[f"decoder.{i}.{n}"]
        h = F.layer_norm(x, (d,), w("normalization.weight"), w("normalization.bias"), eps)
        q, k, v = (F.linear(h, w(f"mixer.{n}.weight"), w(f"mixer.{n}.bias")) for n in ("query", "key", "value"))
        split = lambda y: y.view(b, t, heads, d // heads).transpose(1, 2)
        a = causal_attention(split(q), split(k), split(v)).transpose(1, 2).reshape(b, t, d)
        x = x + F.linear(a, w("mixer.output.weight"), w("mixer.output.bias"))
        h = F.layer_norm(x, (d,), w("mlp_normalization.weight"), w("mlp_normalization.bias"), eps)
        h = F.gelu(F.linear(h, w("mlp.up.weight"), w("mlp.up.bias")), approximate="tanh")
        x = x + F.linear(h, w("mlp.down.weight"), w("mlp.down.bias"))
    x = F.layer_norm(x, (d,), p["head.normalization.weight"], p["head.normalization.bias"], eps)
    return x @ p["embeddings.word.weight"].T


def rms_norm(x, weight, eps):
    xf = x.float()
    return weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def llama(p, tokens, layers, heads, groups, head_size, theta, eps=1e-5, window=None):
    b, t = tokens.shape
    x = p["embeddings.word.weight"][tokens]
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_size, 2, dtype=torch.int64).float() / head_size))
    freqs = torch.outer(torch.arange(t).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    for i in range(layers):
        w = lambda n: p[f"decoder.{i}.{n}"]
        h = rms_norm(x, w("normalization.weight"), eps)
        q = F.linear(h, w("mixer.query.weight")).view(b, t, heads, head_size).transpose(1, 2)
        k = F.linear(h, w("mixer.key.weight")).view(b, t, groups, head_size).transpose(1, 2)
        v = F.linear(h, w("mixer.value.weight")).view(b, t, groups, head_size).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // groups, dim=1)
        v = v.repeat_interleave(heads // groups, dim=1)
        a = causal_attention(q, k, v, window).transpose(1, 2).reshape(b, t, heads * head_size)
        x = x + F.linear(a, w("mixer.output.weight"))
        h = rms_norm(x, w("mlp_normalization.weight"), eps)
        h = F.silu(F.linear(h, w("mlp.gate.weight"))) * F.linear(h, w("mlp.up.weight"))
        x = x + F.linear(h, w("mlp.down.weight"))
    x = rms_norm(x, p["head.normalization.weight"], eps)
    return x @ p["head.output.weight"].T
