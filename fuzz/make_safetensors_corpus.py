#!/usr/bin/env python3
"""Writes the seed corpus of safetensors_fuzzer: tiny valid files (plain Python, no torch)."""
import json
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "safetensors_corpus")
os.makedirs(out, exist_ok=True)

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "F16": 2, "BF16": 2, "I32": 4, "F32": 4,
         "F64": 8, "I64": 8, "C64": 8, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1}


def write(name, tensors, metadata=None, pad=True):
    header, data, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for key, dtype, shape, payload in tensors:
        n = 1
        for d in shape:
            n *= d
        size = n * SIZES[dtype]
        payload = (payload * (size // max(len(payload), 1) + 1))[:size] if payload else bytes(size)
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        data += payload
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


write("empty", [])
write("metadata", [], {"format": "pt"})
write("f32", [("w", "F32", [2, 3], struct.pack("<6f", 1, 2, 3, 4, 5, 6))], {"format": "pt"})
write("mixed", [("a", "F64", [2], struct.pack("<2d", 1.5, -2)),
                ("b", "BF16", [3], b"\x80\x3f\x00\x40\x40\x40"),
                ("c", "I64", [1, 1], struct.pack("<q", -7)),
                ("d", "U8", [5], b"\x01\x02\x03\x04\x05"),
                ("e", "BOOL", [2], b"\x00\x01")])
write("unaligned", [("x", "I8", [3], b"\x01\x02\x03"), ("y", "F32", [2], struct.pack("<2f", 1, 2))],
      pad=False)
write("scalar_and_zero", [("s", "F16", [], b"\x00\x3c"), ("z", "I32", [0, 4], b"")])
write("c64_u16", [("c", "C64", [2], struct.pack("<4f", 1, 2, 3, 4)), ("u", "U16", [2], b"\x01\x00\x02\x00")])
