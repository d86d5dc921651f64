"""The Python PyTorch eager peer of fusion_decode_bench: the same deep-fusion model (a 58M
Llama-style decoder, hidden 512, 8 layers, GQA 8 heads / 4 groups, gated cross-attention before
layers 3 and 7 into a memory of width 512) written the way Meta's llama-models reference code
writes its multimodal decoder (models/llama3/reference_impl/multimodal/model.py: a KV cache per
self-attention layer, the cross-attention keys and values computed once from the vision tokens
and reused while decoding), batch 1, float32, no autograd, a 16-token prompt and 32 greedy
tokens. Prints tokens/s at 64 and 1024 memory vectors, timed like the C++ benchmark (prefill
included).
  OPENBLAS_NUM_THREADS=1 python3 benchmarks/fusion_decode_peer.py
"""
import math
import time

import torch
import torch.nn.functional as F

D, LAYERS, HEADS, GROUPS, HEAD, FF, VOCAB = 512, 8, 8, 4, 64, 1536, 32000
PROMPT, GENERATED, FUSION = 16, 32, (3, 7)


def rms(x, w, eps=1e-5):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def linear(i, o):
    return torch.randn(o, i) * 0.02


class Model:
    def __init__(self):
        torch.manual_seed(0)
        self.embed = torch.randn(VOCAB, D) * 0.02
        self.out = linear(D, VOCAB)
        self.norm = torch.ones(D)
        self.layers = [dict(q=linear(D, HEADS * HEAD), k=linear(D, GROUPS * HEAD),
                            v=linear(D, GROUPS * HEAD), o=linear(HEADS * HEAD, D),
                            gate=linear(D, FF), up=linear(D, FF), down=linear(FF, D),
                            n1=torch.ones(D), n2=torch.ones(D)) for _ in range(LAYERS)]
        self.cross = {i: dict(q=linear(D, HEADS * HEAD), k=linear(D, GROUPS * HEAD),
                              v=linear(D, GROUPS * HEAD), o=linear(HEADS * HEAD, D),
                              gate=linear(D, FF), up=linear(D, FF), down=linear(FF, D),
                              n1=torch.ones(D), n2=torch.ones(D), ga=torch.tensor([0.5]),
                              gm=torch.tensor([0.5])) for i in FUSION}
        inv = 1.0 / (500000.0 ** (torch.arange(0, HEAD, 2).float() / HEAD))
        f = torch.outer(torch.arange(PROMPT + GENERATED).float(), inv)
        e = torch.cat((f, f), -1)
        self.cos, self.sin = e.cos(), e.sin()

    def setup_memory(self, memory):
        # Llama 3.2's CrossAttention.compute_xattn_kv_cache: once per image.
        self.xkv = {}
        for i, w in self.cross.items():
            k = F.linear(memory, w["k"]).view(1, -1, GROUPS, HEAD).transpose(1, 2)
            v = F.linear(memory, w["v"]).view(1, -1, GROUPS, HEAD).transpose(1, 2)
            self.xkv[i] = (k.repeat_interleave(HEADS // GROUPS, 1),
                           v.repeat_interleave(HEADS // GROUPS, 1))
        self.cache = [None] * LAYERS

    def forward(self, tokens, start):
        t = tokens.shape[1]
        x = self.embed[tokens]
        cos, sin = self.cos[start:start + t], self.sin[start:start + t]
        rot = lambda y: y * cos + torch.cat((-y[..., HEAD // 2:], y[..., :HEAD // 2]), -1) * sin
        for i, w in enumerate(self.layers):
            if i in self.cross:
                c = self.cross[i]
                h = rms(x, c["n1"])
                q = F.linear(h, c["q"]).view(1, t, HEADS, HEAD).transpose(1, 2)
                k, v = self.xkv[i]
                a = ((q @ k.transpose(-1, -2)) / math.sqrt(HEAD)).softmax(-1) @ v
                x = x + c["ga"].tanh() * F.linear(a.transpose(1, 2).reshape(1, t, -1), c["o"])
                h = rms(x, c["n2"])
                m = F.linear(F.silu(F.linear(h, c["gate"])) * F.linear(h, c["up"]), c["down"])
                x = x + c["gm"].tanh() * m
            h = rms(x, w["n1"])
            q = rot(F.linear(h, w["q"]).view(1, t, HEADS, HEAD).transpose(1, 2))
            k = rot(F.linear(h, w["k"]).view(1, t, GROUPS, HEAD).transpose(1, 2))
            v = F.linear(h, w["v"]).view(1, t, GROUPS, HEAD).transpose(1, 2)
            if self.cache[i] is not None:
                k = torch.cat((self.cache[i][0], k), 2)
                v = torch.cat((self.cache[i][1], v), 2)
            self.cache[i] = (k, v)
            k, v = k.repeat_interleave(HEADS // GROUPS, 1), v.repeat_interleave(HEADS // GROUPS, 1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD)
            if t > 1:
                s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
            a = s.softmax(-1) @ v
            x = x + F.linear(a.transpose(1, 2).reshape(1, t, -1), w["o"])
            h = rms(x, w["n2"])
            x = x + F.linear(F.silu(F.linear(h, w["gate"])) * F.linear(h, w["up"]), w["down"])
        return F.linear(rms(x, self.norm), self.out)


def run(model, memory_tokens, repeats=3):
    memory = torch.randn(1, memory_tokens, D)
    prompt = torch.randint(0, VOCAB, (1, PROMPT))
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        model.setup_memory(memory)
        nxt = model.forward(prompt, 0)[:, -1].argmax(-1, keepdim=True)
        for i in range(GENERATED):
            nxt = model.forward(nxt, PROMPT + i)[:, -1].argmax(-1, keepdim=True)
        best = min(best, time.perf_counter() - begin)
    return GENERATED / best


if __name__ == "__main__":
    with torch.inference_mode():
        model = Model()
        for m in (64, 1024):
            print("peer memory %d: %.1f tokens/s" % (m, run(model, m)))
