"""Meta's Llama 3 inference code in Python PyTorch eager: the peer of generate_bench and the
reference loop of tests/framework/generate/reference_loops_test.cpp. Written after
meta-llama/llama3's llama/model.py (Attention with a preallocated cache_k / cache_v per layer,
complex rotary through view_as_complex, the -inf triu mask only when more than one token is fed,
RMSNorm in float) and llama/generation.py's generate() (prompts right-aligned on position 0, a
buffer filled with pad_id, decoding from the shortest prompt on while the longer ones still copy
their own tokens in, argmax at temperature 0, top-p sampling otherwise, stop tokens), without
fairscale's model parallelism (one process: its layers are nn.Linear) and in float32 on the CPU.

  Reference: python3 benchmarks/generate_peer.py --folder HF --prompts P.json --max-gen-len N
    HF: a Hugging Face Llama folder (q/k rows are permuted back to Meta's interleaved rotary
    layout, as convert_llama_weights_to_hf.py's permute() undoes); P.json: a list of id lists.
    Prints {"ids": [...]} per prompt, the new tokens only (echo=False).
  Benchmark: python3 benchmarks/generate_peer.py --bench [--threads T] [--steps S]
    Random weights of generate_bench's ~125M Llama shape; prints one JSON line of decode tokens/s
    at batch 1 and 8 and the time to first token of a 512-token prompt.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class ModelArgs:
    def __init__(self, dim, n_layers, n_heads, n_kv_heads, vocab_size, hidden_dim,
                 norm_eps=1e-5, rope_theta=500000.0, max_batch_size=8, max_seq_len=1024):
        self.dim, self.n_layers, self.n_heads, self.n_kv_heads = dim, n_layers, n_heads, n_kv_heads
        self.vocab_size, self.hidden_dim, self.norm_eps = vocab_size, hidden_dim, norm_eps
        self.rope_theta, self.max_batch_size, self.max_seq_len = rope_theta, max_batch_size, max_seq_len


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float()).type_as(x)
        return output * self.weight


def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device, dtype=torch.float32)
    freqs = torch.outer(t, freqs)
    return torch.polar(torch.ones_like(freqs), freqs)  # complex64


def reshape_for_broadcast(freqs_cis, x):
    ndim = x.ndim
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def repeat_kv(x, n_rep):
    bs, slen, n_kv_heads, head_dim = x.shape
    if n_rep == 1:
        return x
    return (x[:, :, :, None, :].expand(bs, slen, n_kv_heads, n_rep, head_dim)
            .reshape(bs, slen, n_kv_heads * n_rep, head_dim))


class Attention(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.n_kv_heads = args.n_kv_heads
        self.n_local_heads = args.n_heads
        self.n_local_kv_heads = self.n_kv_heads
        self.n_rep = self.n_local_heads // self.n_local_kv_heads
        self.head_dim = args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)
        self.cache_k = torch.zeros((args.max_batch_size, args.max_seq_len, self.n_local_kv_heads,
                                    self.head_dim))
        self.cache_v = torch.zeros((args.max_batch_size, args.max_seq_len, self.n_local_kv_heads,
                                    self.head_dim))

    def forward(self, x, start_pos, freqs_cis, mask):
        bsz, seqlen, _ = x.shape
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)
        xq = xq.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        xk = xk.view(bsz, seqlen, self.n_local_kv_heads, self.head_dim)
        xv = xv.view(bsz, seqlen, self.n_local_kv_heads, self.head_dim)
        xq, xk = apply_rotary_emb(xq, xk, freqs_cis=freqs_cis)
        self.cache_k = self.cache_k.to(xq)
        self.cache_v = self.cache_v.to(xq)
        self.cache_k[:bsz, start_pos: start_pos + seqlen] = xk
        self.cache_v[:bsz, start_pos: start_pos + seqlen] = xv
        keys = self.cache_k[:bsz, : start_pos + seqlen]
        values = self.cache_v[:bsz, : start_pos + seqlen]
        keys = repeat_kv(keys, self.n_rep)
        values = repeat_kv(values, self.n_rep)
        xq = xq.transpose(1, 2)
        keys = keys.transpose(1, 2)
        values = values.transpose(1, 2)
        scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        scores = F.softmax(scores.float(), dim=-1).type_as(xq)
        output = torch.matmul(scores, values)
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, layer_id, args):
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args.dim, args.hidden_dim)
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, start_pos, freqs_cis, mask):
        h = x + self.attention(self.attention_norm(x), start_pos, freqs_cis, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, params):
        super().__init__()
        self.params = params
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = nn.ModuleList([TransformerBlock(i, params) for i in range(params.n_layers)])
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        self.freqs_cis = precompute_freqs_cis(params.dim // params.n_heads,
                                              params.max_seq_len * 2, params.rope_theta)

    @torch.inference_mode()
    def forward(self, tokens, start_pos):
        _bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        self.freqs_cis = self.freqs_cis.to(h.device)
        freqs_cis = self.freqs_cis[start_pos: start_pos + seqlen]
        mask = None
        if seqlen > 1:
            mask = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device)
            mask = torch.triu(mask, diagonal=1)
            mask = torch.hstack([torch.zeros((seqlen, start_pos), device=tokens.device),
                                 mask]).type_as(h)
        for layer in self.layers:
            h = layer(h, start_pos, freqs_cis, mask)
        h = self.norm(h)
        return self.output(h).float()


def sample_top_p(probs, p):
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    mask = probs_sum - probs_sort > p
    probs_sort[mask] = 0.0
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    next_token = torch.multinomial(probs_sort, num_samples=1)
    return torch.gather(probs_idx, -1, next_token)


@torch.inference_mode()
def generate(model, prompt_tokens, max_gen_len, temperature=0.0, top_p=0.9, stop_tokens=(),
             pad_id=-1, on_first_token=None):
    """generation.py's Llama.generate (logprobs and echo off): the new tokens of each prompt."""
    params = model.params
    bsz = len(prompt_tokens)
    assert bsz <= params.max_batch_size, (bsz, params.max_batch_size)
    min_prompt_len = min(len(t) for t in prompt_tokens)
    max_prompt_len = max(len(t) for t in prompt_tokens)
    assert max_prompt_len <= params.max_seq_len
    total_len = min(params.max_seq_len, max_gen_len + max_prompt_len)
    tokens = torch.full((bsz, total_len), pad_id, dtype=torch.long)
    for k, t in enumerate(prompt_tokens):
        tokens[k, : len(t)] = torch.tensor(t, dtype=torch.long)
    prev_pos = 0
    eos_reached = torch.tensor([False] * bsz)
    input_text_mask = tokens != pad_id
    stop = torch.tensor(list(stop_tokens), dtype=torch.long)
    for cur_pos in range(min_prompt_len, total_len):
        logits = model.forward(tokens[:, prev_pos:cur_pos], prev_pos)
        if temperature > 0:
            probs = torch.softmax(logits[:, -1] / temperature, dim=-1)
            next_token = sample_top_p(probs, top_p)
        else:
            next_token = torch.argmax(logits[:, -1], dim=-1)
        next_token = next_token.reshape(-1)
        next_token = torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token)
        tokens[:, cur_pos] = next_token
        if on_first_token is not None and cur_pos == min_prompt_len:
            on_first_token()
        eos_reached |= (~input_text_mask[:, cur_pos]) & (torch.isin(next_token, stop))
        prev_pos = cur_pos
        if all(eos_reached):
            break
    out = []
    for i, toks in enumerate(tokens.tolist()):
        start = len(prompt_tokens[i])
        toks = toks[start: len(prompt_tokens[i]) + max_gen_len]
        for stop_token in stop_tokens:
            if stop_token in toks:
                toks = toks[: toks.index(stop_token) + 1]  # kept, as blocks keeps it
        out.append(toks)
    return out


# --- a Hugging Face Llama folder into Meta's names ---------------------------------------------

def unpermute(w, n_heads):
    """The inverse of convert_llama_weights_to_hf.py's permute: HF's half-split rotary rows back
    to Meta's interleaved pairs."""
    dim1, dim2 = w.shape
    return w.view(n_heads, 2, dim1 // n_heads // 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def from_hf_folder(folder, max_batch_size, max_seq_len):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "support"))
    from tensors import load
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    args = ModelArgs(c["hidden_size"], c["num_hidden_layers"], heads, kv, c["vocab_size"],
                     c["intermediate_size"], c.get("rms_norm_eps", 1e-5),
                     c.get("rope_theta", 10000.0), max_batch_size, max_seq_len)
    hf = load(os.path.join(folder, "model.safetensors"))
    state = {"tok_embeddings.weight": hf["model.embed_tokens.weight"],
             "norm.weight": hf["model.norm.weight"],
             "output.weight": hf.get("lm_head.weight", hf["model.embed_tokens.weight"])}
    for i in range(args.n_layers):
        a, m = "model.layers.%d." % i, "layers.%d." % i
        state[m + "attention.wq.weight"] = unpermute(hf[a + "self_attn.q_proj.weight"], heads)
        state[m + "attention.wk.weight"] = unpermute(hf[a + "self_attn.k_proj.weight"], kv)
        state[m + "attention.wv.weight"] = hf[a + "self_attn.v_proj.weight"]
        state[m + "attention.wo.weight"] = hf[a + "self_attn.o_proj.weight"]
        state[m + "feed_forward.w1.weight"] = hf[a + "mlp.gate_proj.weight"]
        state[m + "feed_forward.w3.weight"] = hf[a + "mlp.up_proj.weight"]
        state[m + "feed_forward.w2.weight"] = hf[a + "mlp.down_proj.weight"]
        state[m + "attention_norm.weight"] = hf[a + "input_layernorm.weight"]
        state[m + "ffn_norm.weight"] = hf[a + "post_attention_layernorm.weight"]
    model = Transformer(args)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and not [k for k in missing if "cache" not in k], (missing, unexpected)
    return model.eval()


# The shape generate_bench builds: a ~125M Llama (hidden 768, 12 layers, 12 heads in 4 groups,
# SwiGLU 2048, vocab 32000, untied head).
BENCH = dict(dim=768, n_layers=12, n_heads=12, n_kv_heads=4, vocab_size=32000, hidden_dim=2048)


def bench(threads, steps, ttft_prompt=512):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Transformer(ModelArgs(**BENCH, max_batch_size=8, max_seq_len=ttft_prompt + steps + 8))
    for p in model.parameters():
        nn.init.normal_(p, std=0.02)
    model.eval()
    g = torch.Generator().manual_seed(1)
    result = {}
    for batch in (1, 8):
        prompts = torch.randint(0, BENCH["vocab_size"], (batch, 16), generator=g).tolist()
        generate(model, prompts, 2)  # warm-up
        marks = {}
        start = time.perf_counter()
        generate(model, prompts, steps + 1,
                 on_first_token=lambda: marks.setdefault("first", time.perf_counter()))
        end = time.perf_counter()
        result["decode_tokens_per_s_batch%d" % batch] = batch * steps / (end - marks["first"])
    prompt = torch.randint(0, BENCH["vocab_size"], (1, ttft_prompt), generator=g).tolist()
    times = []
    for _ in range(3):
        marks = {}
        start = time.perf_counter()
        generate(model, prompt, 1,
                 on_first_token=lambda: marks.setdefault("first", time.perf_counter()))
        times.append(marks["first"] - start)
    result["ttft_512_s"] = min(times)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder")
    parser.add_argument("--prompts")
    parser.add_argument("--max-gen-len", type=int, default=16)
    parser.add_argument("--stop", type=int, action="append", default=[])
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, default=32)
    a = parser.parse_args()
    if a.bench:
        print(json.dumps(bench(a.threads, a.steps)))
        return
    torch.set_num_threads(1)
    with open(a.prompts) as f:
        prompts = json.load(f)
    model = from_hf_folder(a.folder, len(prompts),
                           max(len(p) for p in prompts) + a.max_gen_len)
    print(json.dumps({"ids": generate(model, prompts, a.max_gen_len, stop_tokens=a.stop)}))


if __name__ == "__main__":
    main()
