"""Byte-level BPE as OpenAI's GPT-2 encoder.py computes it (bytes_to_unicode, regex.findall with
the pre-tokenizer's pattern, Encoder.bpe merging the lowest-ranked pair first), with Debian's
python3-regex; a small BPE learner (the most frequent adjacent pair, ties to the smallest) to make
merges from a text; and tokenizer.json files in Hugging Face's layout for them. The reference of
tests/framework/text/tokenizer_test.cpp and the Python peer of benchmarks/tokenizer_bench.cpp."""
import json
import os
import unicodedata

import regex

# encoder.py's bytes_to_unicode.
_bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + \
    list(range(ord('®'), ord('ÿ') + 1))
_cs = _bs[:]
_n = 0
for _b in range(256):
    if _b not in _bs:
        _bs.append(_b)
        _cs.append(256 + _n)
        _n += 1
byte_encoder = dict(zip(_bs, [chr(c) for c in _cs]))

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# Qwen2's: Llama 3's with single digits.
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

GPT2_PRE = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True}


def split_then_byte_level(pattern):
    return {'type': 'Sequence', 'pretokenizers': [
        {'type': 'Split', 'pattern': {'Regex': pattern}, 'behavior': 'Isolated', 'invert': False},
        {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}]}


LLAMA3_PRE = split_then_byte_level(LLAMA3)
QWEN2_PRE = split_then_byte_level(QWEN2)


def words(text, pattern):
    return [''.join(byte_encoder[b] for b in t.encode('utf-8')) for t in regex.findall(pattern, text)]


def learn(text, pattern, count):
    freq = {}
    for w in words(text, pattern):
        freq[tuple(w)] = freq.get(tuple(w), 0) + 1
    merges = []
    for _ in range(count):
        pairs = {}
        for w, f in freq.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        new = {}
        for w, f in freq.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + f
        freq = new
    return merges


def get_pairs(word):
    return set(zip(word, word[1:]))


def bpe(token, ranks):
    # encoder.py's Encoder.bpe, line for line.
    word = tuple(token)
    pairs = get_pairs(word)
    if not pairs:
        return token
    while True:
        bigram = min(pairs, key=lambda pair: ranks.get(pair, float('inf')))
        if bigram not in ranks:
            break
        first, second = bigram
        new_word = []
        i = 0
        while i < len(word):
            try:
                j = word.index(first, i)
                new_word.extend(word[i:j])
                i = j
            except ValueError:
                new_word.extend(word[i:])
                break
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new_word.append(first + second)
                i += 2
            else:
                new_word.append(word[i])
                i += 1
        word = tuple(new_word)
        if len(word) == 1:
            break
        pairs = get_pairs(word)
    return ' '.join(word)


class Encoder:
    """encoder.py's Encoder.encode (with its cache of merged pieces), added tokens cut out first."""

    def __init__(self, pattern, merges, specials, form=None):
        self.pattern = regex.compile(pattern)
        self.form = form  # a normalizer's Unicode form (Qwen2: NFC), applied between added tokens
        self.vocab = {byte_encoder[b]: i for i, b in enumerate(range(256))}
        for a, b in merges:
            if a + b not in self.vocab:
                self.vocab[a + b] = len(self.vocab)
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.special_ids = {s: len(self.vocab) + k for k, s in enumerate(specials)}
        self.split = regex.compile('(' + '|'.join(regex.escape(s) for s in specials) + ')')
        self.cache = {}

    def encode(self, text):
        ids = []
        for part in self.split.split(text):
            if part in self.special_ids:
                ids.append(self.special_ids[part])
                continue
            if self.form:
                part = unicodedata.normalize(self.form, part)
            for t in self.pattern.findall(part):
                w = ''.join(byte_encoder[b] for b in t.encode('utf-8'))
                if w not in self.cache:
                    self.cache[w] = [self.vocab[p] for p in bpe(w, self.ranks).split(' ')]
                ids.extend(self.cache[w])
        return ids

    def write(self, folder, pre, merge_format, merges):
        added = [{'id': i, 'content': s, 'special': True, 'single_word': False, 'lstrip': False,
                  'rstrip': False, 'normalized': False} for s, i in self.special_ids.items()]
        doc = {'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added,
               'normalizer': {'type': self.form} if self.form else None, 'pre_tokenizer': pre, 'post_processor': None,
               'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True,
                           'use_regex': True},
               'model': {'type': 'BPE', 'dropout': None, 'unk_token': None,
                         'continuing_subword_prefix': '', 'end_of_word_suffix': '',
                         'fuse_unk': False, 'byte_fallback': False, 'vocab': self.vocab,
                         'merges': [merge_format(a, b) for a, b in merges]}}
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, 'tokenizer.json'), 'w', encoding='utf-8') as f:
            json.dump(doc, f, ensure_ascii=False)
