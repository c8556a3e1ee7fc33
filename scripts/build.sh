#!/usr/bin/env bash
# Configures and builds packvisor into ./build (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${@:2}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
