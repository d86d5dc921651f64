#!/usr/bin/env bash
# Configures (once) and builds blocks into ./build. Extra arguments go to cmake --build.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache caches files compiled with the LibTorch precompiled header only with these.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build "$@"
