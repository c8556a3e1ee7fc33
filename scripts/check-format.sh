#!/usr/bin/env bash
# Fails when a tracked C++ source differs from clang-format's output (.clang-format: Google base,
# 100 columns). `scripts/check-format.sh --fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t sources < <(git ls-files '*.cc' '*.h')
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i --style=file "${sources[@]}"
else
  clang-format --dry-run --Werror --style=file "${sources[@]}"
fi
