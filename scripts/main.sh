#!/usr/bin/env bash
# The main job: install, build, validate and resolve every config in configs/, then train a
# small GPT on real English text (the bytes of Debian's fortune cookies) for a few minutes of
# CPU, show the loss falling and draw the curves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh --target blockc
blockc=./build/tools/blockc/blockc
$blockc validate configs/*.yaml configs/runs/*.yaml
mkdir -p build/resolved
for f in configs/*.yaml; do
  $blockc resolve "$f" -o "build/resolved/$(basename "$f")"
done
echo "validated and resolved $(ls configs/*.yaml | wc -l) configs into build/resolved/"

# Every text file of the fortunes package (the .dat indexes and .u8 links left out).
texts=$(find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.*' ! -name 'ascii-art' |
  sort)
$blockc prepare --bytes $texts -o build/fortunes
run=build/runs/fortunes-tiny
rm -rf "$run"
$blockc train configs/runs/fortunes-tiny.yaml --out "$run"
$blockc plot "$run"
python3 - "$run/log.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
train = [l for l in lines if "loss" in l]
val = [l for l in lines if "val_loss" in l]
print(f"loss fell from {train[0]['loss']:.3f} (step {train[0]['step']}) to "
      f"{train[-1]['loss']:.3f} (step {train[-1]['step']}); validation loss "
      + ", ".join(f"{v['val_loss']:.3f} at step {v['step']}" for v in val))
PY
echo "curves: $run/curves.svg and $run/curves.png"
