"""Plain-PyTorch reference implementations of GPT-2, Llama (with Qwen2's q/k/v biases) and
Mixtral, reading parameters by blocks' names, and of Gemma and Phi-3, reading Hugging Face's
state-dict names; all written the way Hugging Face's modeling files compute them (not from
blocks' code). Used by the C++ tests to check whole models built from
configs/*.yaml and Hugging Face folders."""
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


def swiglu(h, gate, up, down):
    # LlamaMLP and MixtralBlockSparseTop2MLP: w2(silu(w1 x) * w3 x)
    return F.linear(F.silu(F.linear(h, gate)) * F.linear(h, up), down)


def sparse_moe(h, w, experts, top_k):
    """transformers' MixtralSparseMoeBlock.forward (no jitter: evaluation); the experts are
    stacked [experts, out, in] under blocks' names, expert e being slice [e]."""
    b, t, d = h.shape
    x = h.view(-1, d)
    router_logits = F.linear(x, w("mlp.router.weight"))
    routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
    routing_weights, selected_experts = torch.topk(routing_weights, top_k, dim=-1)
    routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
    routing_weights = routing_weights.to(x.dtype)
    out = torch.zeros((b * t, d), dtype=x.dtype)
    expert_mask = F.one_hot(selected_experts, num_classes=experts).permute(2, 1, 0)
    for e in range(experts):
        idx, top_x = torch.where(expert_mask[e])
        gate, up, down = (w(f"mlp.{n}.weight")[e] for n in ("gate", "up", "down"))
        y = swiglu(x[top_x], gate, up, down)
        out.index_add_(0, top_x, y * routing_weights[top_x, idx, None])
    return out.view(b, t, d)


def llama(p, tokens, layers, heads, groups, head_size, theta, eps=1e-5, window=None, mlp=None,
          embeds=None):
    """Llama; Qwen2 when `p` holds query/key/value biases; `mlp(h, w)` replaces the SwiGLU MLP
    (w: a layer's parameter by its name below decoder.{i}); `embeds` replaces the token
    embeddings (LlamaModel's inputs_embeds)."""
    b, t = tokens.shape
    x = p["embeddings.word.weight"][tokens] if embeds is None else embeds
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_size, 2, dtype=torch.int64).float() / head_size))
    freqs = torch.outer(torch.arange(t).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    for i in range(layers):
        w = lambda n: p[f"decoder.{i}.{n}"]
        bias = lambda n: p.get(f"decoder.{i}.mixer.{n}.bias")  # Qwen2: query, key, value
        proj = lambda h, n: F.linear(h, w(f"mixer.{n}.weight"), bias(n))
        h = rms_norm(x, w("normalization.weight"), eps)
        q = proj(h, "query").view(b, t, heads, head_size).transpose(1, 2)
        k = proj(h, "key").view(b, t, groups, head_size).transpose(1, 2)
        v = proj(h, "value").view(b, t, groups, head_size).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // groups, dim=1)
        v = v.repeat_interleave(heads // groups, dim=1)
        a = causal_attention(q, k, v, window).transpose(1, 2).reshape(b, t, heads * head_size)
        x = x + proj(a, "output")
        h = rms_norm(x, w("mlp_normalization.weight"), eps)
        if mlp:
            x = x + mlp(h, w)
        else:
            x = x + swiglu(h, w("mlp.gate.weight"), w("mlp.up.weight"), w("mlp.down.weight"))
    x = rms_norm(x, p["head.normalization.weight"], eps)
    return x @ p["head.output.weight"].T


def mixtral(p, tokens, layers, heads, groups, head_size, theta, experts, top_k, eps=1e-5):
    """Mixtral: Llama's attention (no sliding window) with MixtralSparseMoeBlock as the MLP."""
    moe = lambda h, w: sparse_moe(h, w, experts, top_k)
    return llama(p, tokens, layers, heads, groups, head_size, theta, eps, mlp=moe)


def rope_tables(t, head_size, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_size, 2, dtype=torch.int64).float() / head_size))
    freqs = torch.outer(torch.arange(t).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos()[None, None], emb.sin()[None, None]


def gemma_rms_norm(x, weight, eps):
    # GemmaRMSNorm: normalized and scaled by (1 + weight) in float32, then cast back.
    xf = x.float()
    out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (out * (1.0 + weight.float())).type_as(x)


def gemma(hf, tokens, layers, heads, groups, head_size, theta, eps=1e-6):
    """GemmaForCausalLM (modeling_gemma.py, Gemma 1) on a state dict in Hugging Face's names:
    embeddings times sqrt(hidden) in their dtype, GemmaRMSNorm, GeGLU with the tanh GELU
    (hidden_activation null), rotate-half rotary, head tied to the embeddings."""
    b, t = tokens.shape
    x = hf["model.embed_tokens.weight"][tokens]
    x = x * torch.tensor(x.shape[-1] ** 0.5, dtype=x.dtype)
    cos, sin = rope_tables(t, head_size, theta)
    for i in range(layers):
        w = lambda n: hf[f"model.layers.{i}.{n}"]
        h = gemma_rms_norm(x, w("input_layernorm.weight"), eps)
        q = F.linear(h, w("self_attn.q_proj.weight")).view(b, t, heads, head_size).transpose(1, 2)
        k = F.linear(h, w("self_attn.k_proj.weight")).view(b, t, groups, head_size).transpose(1, 2)
        v = F.linear(h, w("self_attn.v_proj.weight")).view(b, t, groups, head_size).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // groups, dim=1)
        v = v.repeat_interleave(heads // groups, dim=1)
        a = causal_attention(q, k, v).transpose(1, 2).reshape(b, t, heads * head_size)
        x = x + F.linear(a, w("self_attn.o_proj.weight"))
        h = gemma_rms_norm(x, w("post_attention_layernorm.weight"), eps)
        gate = F.gelu(F.linear(h, w("mlp.gate_proj.weight")), approximate="tanh")
        x = x + F.linear(gate * F.linear(h, w("mlp.up_proj.weight")), w("mlp.down_proj.weight"))
    x = gemma_rms_norm(x, hf["model.norm.weight"], eps)
    return x @ hf["model.embed_tokens.weight"].T


def phi3(hf, tokens, layers, heads, groups, theta, eps=1e-5, window=None):
    """Phi3ForCausalLM (modeling_phi3.py) on a state dict in Hugging Face's names: the fused
    qkv_proj sliced into query, key and value as Phi3Attention does, gate_up_proj chunked into
    gate and up as Phi3MLP does, a sliding window of `window` tokens (sliding_window)."""
    b, t = tokens.shape
    x = hf["model.embed_tokens.weight"][tokens]
    d = x.shape[-1]
    head_size = d // heads
    cos, sin = rope_tables(t, head_size, theta)
    for i in range(layers):
        w = lambda n: hf[f"model.layers.{i}.{n}"]
        h = rms_norm(x, w("input_layernorm.weight"), eps)
        qkv = F.linear(h, w("self_attn.qkv_proj.weight"))
        query_pos = heads * head_size
        q = qkv[..., :query_pos].view(b, t, heads, head_size).transpose(1, 2)
        k = qkv[..., query_pos:query_pos + groups * head_size].view(b, t, groups, head_size).transpose(1, 2)
        v = qkv[..., query_pos + groups * head_size:].view(b, t, groups, head_size).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // groups, dim=1)
        v = v.repeat_interleave(heads // groups, dim=1)
        a = causal_attention(q, k, v, window).transpose(1, 2).reshape(b, t, heads * head_size)
        x = x + F.linear(a, w("self_attn.o_proj.weight"))
        h = rms_norm(x, w("post_attention_layernorm.weight"), eps)
        gate, up = F.linear(h, w("mlp.gate_up_proj.weight")).chunk(2, dim=-1)
        x = x + F.linear(up * F.silu(gate), w("mlp.down_proj.weight"))
    x = rms_norm(x, hf["model.norm.weight"], eps)
    return x @ hf["lm_head.weight"].T
