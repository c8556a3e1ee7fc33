#!/usr/bin/env bash
# Installs the dependencies, builds packvisor and runs every test suite (unit, integration,
# security) with ctest, then the unit tests again under AddressSanitizer/UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 300)
bash scripts/build.sh build-asan -DPACKVISOR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ctest --output-on-failure -j "$(nproc)" -L unit --timeout 300)
