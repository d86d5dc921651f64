#!/usr/bin/env bash
# The whole test suite: install, build everything, run CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
status=0
ctest --test-dir build --output-on-failure -j "$(nproc)" || status=$?
# CTest runs each test program as one test: the cases GoogleTest skipped (CUDA without a GPU)
# are listed here, so that a skip is never silent.
log=build/Testing/Temporary/LastTest.log
if [ -f "$log" ]; then
  skipped=$(grep -h '^\[  SKIPPED \] [A-Za-z]' "$log" | sed -E 's/^\[  SKIPPED \] ([^ ,]+).*/\1/' |
    sort -u || true)
  if [ -n "$skipped" ]; then
    echo "Skipped cases ($(printf '%s\n' "$skipped" | wc -l)):"
    printf '%s\n' "$skipped"
  fi
fi
exit "$status"
