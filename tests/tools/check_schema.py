#!/usr/bin/env python3
"""Cross-checks blocks' JSON Schema with an independent validator (python3-jsonschema):
the schema is a valid draft 2020-12 schema, every resolved config validates against it, every
authored config file validates too, and a few broken documents are rejected."""
import json
import pathlib
import subprocess
import sys

import jsonschema
import yaml

blockc, source = sys.argv[1], pathlib.Path(sys.argv[2])
schema = json.loads((source / "schemas" / "blocks.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)

failures = 0
checked = 0
for config in sorted((source / "configs").glob("*.yaml")) + sorted((source / "configs").glob("runs/*.yaml")):
    resolved = subprocess.run([blockc, "resolve", str(config), "--format", "json"],
                              check=True, capture_output=True, text=True).stdout
    for name, doc in ((config.name + " (resolved)", json.loads(resolved)),
                      (config.name, yaml.safe_load(config.read_text()))):
        errors = list(validator.iter_errors(doc))
        checked += 1
        for e in errors[:5]:
            failures += 1
            print(f"FAIL {name}: {'/'.join(map(str, e.absolute_path))}: {e.message}")

# A node that mounts a base with `extends` may leave out what the base gives.
mounted = {"version": 1, "model": {
    "type": "language_model", "hidden_size": 64, "embeddings": {"vocab_size": 100},
    "decoder": {"extends": "llama3-8b.yaml#model.decoder", "num_layers": 2},
    "head": {"normalization": {"extends": ["norm.yaml", "base.yaml#model.head.normalization"]}}}}
good = [
    mounted,
    {"version": 1, "model": {"extends": "../configs/llama3-8b.yaml#model", "hidden_size": 512}},
]
for doc in good:
    checked += 1
    for e in list(validator.iter_errors(doc))[:5]:
        failures += 1
        print(f"FAIL: schema rejected a mount: {'/'.join(map(str, e.absolute_path))}: {e.message}")

bad = [
    {"version": 1, "model": {"type": "language_model", "hidden_size": "wide"}},
    {"version": 1, "model": {"type": "no_such_model"}},
    {"version": 1, "modle": {}},
    {"version": 1, "model": {"extends": 3}},
    {"version": 1, "model": {"extends": "a.yaml#model#decoder"}},
    {"version": 1, "extends": "base.yaml#model"},
    {**mounted, "model": {**mounted["model"], "decoder": {"num_layers": 2}}},
]
for doc in bad:
    checked += 1
    if validator.is_valid(doc):
        failures += 1
        print(f"FAIL: schema accepted a broken document: {doc}")

print(f"{checked - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
