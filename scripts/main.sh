#!/usr/bin/env bash
# The main job: install, build, then validate and resolve every config in configs/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh --target blockc
./build/tools/blockc/blockc validate configs/*.yaml
mkdir -p build/resolved
for f in configs/*.yaml; do
  ./build/tools/blockc/blockc resolve "$f" -o "build/resolved/$(basename "$f")"
done
echo "validated and resolved $(ls configs/*.yaml | wc -l) configs into build/resolved/"
