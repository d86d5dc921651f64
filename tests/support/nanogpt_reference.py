"""The reference training loop for blockc train's nanoGPT parity test: nanoGPT's model and loop,
written after karpathy/nanoGPT at commit 3adf61e154c3fe3fca428ad6bc3818b27a3b8291 (model.py: GPT,
Block, CausalSelfAttention's non-flash path since torch 1.13 has no scaled_dot_product_attention,
MLP with nn.GELU(), LayerNorm with bias, tied lm_head, configure_optimizers; train.py: get_lr,
gradient accumulation, clip_grad_norm_, AdamW step, zero_grad(set_to_none=True)), in float32 on
the CPU. Batches are blocks' `sequential` windows, not nanoGPT's torch.randint ones.
  /usr/bin/python3 tests/support/nanogpt_reference.py SPEC.json > result.json
SPEC.json: {"model": {n_layer, n_head, n_embd, vocab_size, block_size, bias}, "init": blocks
safetensors, "data": uint16 tokens, sequence_length, micro_batch, accumulation, learning_rate,
min_lr, warmup_iters, lr_decay_iters, decay_lr, weight_decay, beta1, beta2, grad_clip, steps,
"out": blocks safetensors to write; optional "forward": {"input": safetensors with int64
`tokens`, "output": safetensors to receive `logits` of the initial weights}; or, instead of
training, "generate": {"input": safetensors with int64 `tokens` [prompts, length],
"max_new_tokens", "temperature"}: prints {"ids"} of model.py's generate() with top_k=1}; relative paths are
taken from SPEC.json's folder. Prints {"losses", "last_micro_losses", "lrs", "grad_norms"}."""
import json
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensors import load, save  # noqa: E402


# --- model.py ----------------------------------------------------------------------------------

class LayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, input):
        return F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.register_buffer("bias", torch.tril(torch.ones(config.block_size, config.block_size))
                             .view(1, 1, config.block_size, config.block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float('-inf'))
        att = F.softmax(att, dim=-1)
        att = self.attn_dropout(att)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        # nanoGPT's _init_weights is skipped: every parameter comes from blocks' init file.

    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.config.block_size
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)  # every position (nanoGPT trims to the last only without targets)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        # model.py's generate, line for line (its forward returns the last position only).
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.config.block_size else idx[:, -self.config.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float('Inf')
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        param_dict = {pn: p for pn, p in self.named_parameters() if p.requires_grad}
        decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
        nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
        optim_groups = [
            {'params': decay_params, 'weight_decay': weight_decay},
            {'params': nodecay_params, 'weight_decay': 0.0},
        ]
        num_decay = sum(p.numel() for p in decay_params)
        num_nodecay = sum(p.numel() for p in nodecay_params)
        print(f"num decayed parameter tensors: {len(decay_params)}, with {num_decay:,} parameters",
              file=sys.stderr)
        print(f"num non-decayed parameter tensors: {len(nodecay_params)}, with {num_nodecay:,} "
              "parameters", file=sys.stderr)
        return torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas)


# --- blocks' names <-> nanoGPT's (configs/gpt2.yaml's layout; framework/hf/families/gpt2.cpp
# maps Hugging Face's GPT-2 names, which nanoGPT's from_pretrained reads with Conv1D transposed).
# blocks' Linear weights are [out, in] like nn.Linear, so nothing is transposed here; c_attn is
# query, key and value concatenated along the output dimension.

def name_table(n_layer):
    table = [("embeddings.word.weight", "transformer.wte.weight"),
             ("embeddings.position.weight", "transformer.wpe.weight")]
    for i in range(n_layer):
        b, n = f"decoder.{i}.", f"transformer.h.{i}."
        for kind in ("weight", "bias"):
            table += [(b + "normalization." + kind, n + "ln_1." + kind),
                      (b + "mixer.output." + kind, n + "attn.c_proj." + kind),
                      (b + "mlp_normalization." + kind, n + "ln_2." + kind),
                      (b + "mlp.up." + kind, n + "mlp.c_fc." + kind),
                      (b + "mlp.down." + kind, n + "mlp.c_proj." + kind)]
    table += [("head.normalization.weight", "transformer.ln_f.weight"),
              ("head.normalization.bias", "transformer.ln_f.bias")]
    return table


def fused(n_layer):
    # nanoGPT's c_attn name -> blocks' query, key, value names, in split order.
    out = {}
    for i in range(n_layer):
        for kind in ("weight", "bias"):
            out[f"transformer.h.{i}.attn.c_attn.{kind}"] = [
                f"decoder.{i}.mixer.{p}.{kind}" for p in ("query", "key", "value")]
    return out


def load_blocks(model, weights):
    """Fills every nanoGPT parameter from blocks' tensors, using every one of them (strict)."""
    n_layer = model.config.n_layer
    state = {}
    used = set()
    for blocks_name, ours in name_table(n_layer):
        if blocks_name in weights:
            state[ours] = weights[blocks_name]
            used.add(blocks_name)
    for ours, parts in fused(n_layer).items():
        if all(p in weights for p in parts):
            state[ours] = torch.cat([weights[p] for p in parts], 0)
            used.update(parts)
    if "head.output.weight" in weights:
        raise SystemExit("init: head.output.weight is present, but nanoGPT's head is tied to wte")
    unused = sorted(set(weights) - used)
    if unused:
        raise SystemExit(f"init: blocks tensors with no nanoGPT parameter: {unused}")
    # named_parameters lists the tied lm_head.weight once, as transformer.wte.weight.
    assert model.lm_head.weight is model.transformer.wte.weight
    params = dict(model.named_parameters())
    missing = sorted(n for n in params if state.get(n) is None)
    if missing:
        raise SystemExit(f"init: nanoGPT parameters not in the file: {missing}")
    with torch.no_grad():
        for n, p in params.items():
            if tuple(state[n].shape) != tuple(p.shape):
                raise SystemExit(f"init: {n} has shape {tuple(state[n].shape)}; expected "
                                 f"{tuple(p.shape)}")
            p.copy_(state[n].to(torch.float32))


def blocks_state(model):
    n_layer, d = model.config.n_layer, model.config.n_embd
    params = dict(model.named_parameters())
    out = {b: params[n].detach().clone() for b, n in name_table(n_layer) if n in params}
    for ours, parts in fused(n_layer).items():
        if ours in params:
            for p, t in zip(parts, params[ours].detach().split(d, dim=0)):
                out[p] = t.clone()
    return out


# --- train.py ----------------------------------------------------------------------------------

def get_lr(it, spec):
    learning_rate, min_lr = spec["learning_rate"], spec["min_lr"]
    warmup_iters, lr_decay_iters = spec["warmup_iters"], spec["lr_decay_iters"]
    # 1) linear warmup for warmup_iters steps
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    # 2) if it > lr_decay_iters, return min learning rate
    if it > lr_decay_iters:
        return min_lr
    # 3) in between, use cosine decay down to min learning rate
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def get_batch(data, k, micro_batch, length):
    # blocks' `sequential` sampling: micro-batch k, row r starts at ((k * B + r) * L) mod (N - L).
    n = len(data)
    ix = [((k * micro_batch + r) * length) % (n - length) for r in range(micro_batch)]
    x = torch.stack([torch.from_numpy(data[i:i + length].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + length].astype(np.int64)) for i in ix])
    return x, y


def total_norm(parameters):
    # What clip_grad_norm_ (torch 1.13) returns, for grad_clip == 0 where nanoGPT skips it.
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    return torch.norm(torch.stack([torch.norm(g, 2.0) for g in grads]), 2.0)


def train(model, data, spec):
    gas, micro_batch, length = spec["accumulation"], spec["micro_batch"], spec["sequence_length"]
    optimizer = model.configure_optimizers(spec["weight_decay"], spec["learning_rate"],
                                           (spec["beta1"], spec["beta2"]))
    result = {"losses": [], "last_micro_losses": [], "lrs": [], "grad_norms": []}
    for iter_num in range(spec["steps"]):
        lr = get_lr(iter_num, spec) if spec["decay_lr"] else spec["learning_rate"]
        for param_group in optimizer.param_groups:
            param_group['lr'] = lr
        micro = []
        for micro_step in range(gas):
            X, Y = get_batch(data, iter_num * gas + micro_step, micro_batch, length)
            logits, loss = model(X, Y)
            micro.append(loss.item())
            loss = loss / gas
            loss.backward()
        if spec["grad_clip"] != 0.0:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), spec["grad_clip"])
        else:
            norm = total_norm(model.parameters())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        result["losses"].append(sum(micro) / gas)
        result["last_micro_losses"].append(loss.item() * gas)  # train.py's lossf
        result["lrs"].append(lr)
        result["grad_norms"].append(norm.item())
    return result


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    here = os.path.dirname(os.path.abspath(spec_path))
    path = lambda p: os.path.join(here, p)
    torch.set_num_threads(1)  # the sums' order, hence the last bits, do not depend on the machine
    model = GPT(GPTConfig(dropout=0.0, **spec["model"]))
    load_blocks(model, load(path(spec["init"])))
    if "forward" in spec:
        tokens = load(path(spec["forward"]["input"]))["tokens"]
        with torch.no_grad():
            logits, _ = model(tokens)
        save({"logits": logits}, path(spec["forward"]["output"]))
    if "generate" in spec:
        # sample.py's call with top_k=1: the draw from a one-hot distribution is the argmax.
        g = spec["generate"]
        tokens = load(path(g["input"]))["tokens"]
        model.eval()
        out = model.generate(tokens, g["max_new_tokens"], temperature=g.get("temperature", 1.0),
                             top_k=1)
        print(json.dumps({"ids": out[:, tokens.size(1):].tolist()}))
        return
    data = np.memmap(path(spec["data"]), dtype=np.uint16, mode='r')
    model.train()
    result = train(model, data, spec)
    save(blocks_state(model), path(spec["out"]))
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
