"""The Python peers of tokenizer_bench: OpenAI's GPT-2 encoder.py (tests/support/bpe_reference.py,
with python3-regex and encoder.py's cache of merged pieces) and Google's sentencepiece library
(Debian's python3-sentencepiece, its C++ encoder behind a Python call), on the same text.
  python3 benchmarks/tokenizer_peer.py OUT_DIR
Writes OUT_DIR/corpus.txt (the fortunes package's English text, about 1.5 MB), a byte-level BPE
tokenizer.json (Llama 3's pre-tokenizer, 1000 merges learned from the corpus' first 200 kB) and a
SentencePiece BPE tokenizer.model (vocabulary 2000, Llama 2's settings) in OUT_DIR/bpe and
OUT_DIR/sp, their ids of the corpus (OUT_DIR/*/ids.txt, for the C++ side to check), and prints
one JSON line of MB/s (best of 3, each from a fresh encoder)."""
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from bpe_reference import Encoder, learn, LLAMA3, LLAMA3_PRE  # noqa: E402


def best_rate(encode, text, runs=3):
    times, ids = [], None
    for _ in range(runs):
        start = time.perf_counter()
        ids = encode()
        times.append(time.perf_counter() - start)
    return len(text.encode("utf-8")) / 1e6 / min(times), ids


def main(out):
    parts = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/*.u8")):
        with open(path, encoding="utf-8", errors="replace") as f:
            parts.append(f.read())
    text = "".join(parts)[:1500000]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    merges = learn(text[:200000], LLAMA3, 1000)
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    Encoder(LLAMA3, merges, specials).write(os.path.join(out, "bpe"), LLAMA3_PRE, lambda a, b: [a, b],
                                            merges)
    bpe_rate, bpe_ids = best_rate(lambda: Encoder(LLAMA3, merges, specials).encode(text), text)

    import sentencepiece as spm
    os.makedirs(os.path.join(out, "sp"), exist_ok=True)
    with open(os.path.join(out, "sp", "train.txt"), "w", encoding="utf-8") as f:
        f.write(text[:400000])
    spm.SentencePieceTrainer.train(input=os.path.join(out, "sp", "train.txt"),
                                   model_prefix=os.path.join(out, "sp", "tokenizer"),
                                   vocab_size=2000, model_type="bpe", byte_fallback=True,
                                   remove_extra_whitespaces=False, character_coverage=1.0,
                                   normalization_rule_name="identity", minloglevel=2)
    model = os.path.join(out, "sp", "tokenizer.model")
    sp_rate, sp_ids = best_rate(
        lambda: spm.SentencePieceProcessor(model_file=model).encode(text), text)
    for name, ids in (("bpe", bpe_ids), ("sp", sp_ids)):
        with open(os.path.join(out, name, "ids.txt"), "w") as f:
            f.write(" ".join(map(str, ids)))
    print(json.dumps({"bytes": len(text.encode("utf-8")), "bpe_mb_s": bpe_rate,
                      "sp_mb_s": sp_rate}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
