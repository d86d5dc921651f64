"""The Python PyTorch eager peer of the training-throughput benchmark: nanoGPT's GPT-2 124M
(n_layer 12, n_head 12, n_embd 768, block_size 1024, bias, dropout 0; the model of
tests/support/nanogpt_reference.py, which follows karpathy/nanoGPT's model.py, with model.py's
_init_weights) trained the way nanoGPT's train.py trains it: AdamW (lr 6e-4, betas 0.9/0.95,
weight decay 0.1 on the >= 2-D parameters, eps default), clip_grad_norm_ 1.0, step,
zero_grad(set_to_none=True); float32 on the CPU, batch 1 x 256 tokens drawn at random from a
fixed seed, no gradient accumulation. Times --steps steps after --warmup untimed ones and prints
one JSON line: {"tokens_per_s", "step_s" (mean), "steps", "threads"}.
  /usr/bin/python3 benchmarks/train_peer.py --steps 5 --warmup 2 [--threads T] [--vocab 50304]
"""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "support"))
from nanogpt_reference import GPT, GPTConfig  # noqa: E402

BATCH, TOKENS = 1, 256
LEARNING_RATE, BETAS, WEIGHT_DECAY, GRAD_CLIP = 6e-4, (0.9, 0.95), 0.1, 1.0


def init_weights(model, n_layer):
    # model.py's _init_weights, then the scaled residual projections.
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
    for pn, p in model.named_parameters():
        if pn.endswith('c_proj.weight'):
            torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))


def step(model, optimizer, x, y):
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def run(steps, warmup, vocab):
    torch.manual_seed(0)
    config = GPTConfig(n_layer=12, n_head=12, n_embd=768, vocab_size=vocab, block_size=1024,
                       bias=True, dropout=0.0)
    model = GPT(config)
    init_weights(model, config.n_layer)
    model.train()
    optimizer = model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
    batches = [torch.randint(0, vocab, (BATCH, TOKENS + 1)) for _ in range(warmup + steps)]
    for b in batches[:warmup]:
        step(model, optimizer, b[:, :-1], b[:, 1:])
    begin = time.perf_counter()
    for b in batches[warmup:]:
        step(model, optimizer, b[:, :-1], b[:, 1:])
    return (time.perf_counter() - begin) / steps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch.set_num_threads (default: the cores this process may use)")
    parser.add_argument("--vocab", type=int, choices=(50257, 50304), default=50257,
                        help="GPT-2's 50257, or nanoGPT's padded 50304")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--steps and --threads must be at least 1, --warmup at least 0")
    torch.set_num_threads(args.threads)
    step_s = run(args.steps, args.warmup, args.vocab)
    print(json.dumps({"tokens_per_s": BATCH * TOKENS / step_s, "step_s": step_s,
                      "steps": args.steps, "threads": args.threads}))
