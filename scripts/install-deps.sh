#!/usr/bin/env bash
# Installs the Debian 12 packages blocks needs, only those missing (fast when nothing is).
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libpcre2-dev libicu-dev
  libpng-dev libjpeg62-turbo-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-jsonschema python3-yaml
  graphviz
  libtorch-dev libgloo-dev python3-torch python3-pil
  # The tokenizer tests' references: OpenAI's GPT-2 encoder.py's algorithm (with `regex`) and
  # Python's sentencepiece (the library itself is not linked: framework/text/sentencepiece.h says why).
  python3-regex python3-sentencepiece
  # The README's training run reads the fortune cookies as English text.
  fortunes
  # Debian's LibTorch calls whatever libblas.so.3 is selected; the reference BLAS is ~25x
  # slower. OpenBLAS takes the alternative on install (tests/blas_is_fast checks).
  libopenblas0-pthread
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
