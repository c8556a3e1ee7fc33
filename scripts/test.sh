#!/usr/bin/env bash
# Installs the dependencies, builds packvisor and runs every test suite (unit, integration,
# security) with ctest, then the unit tests again under AddressSanitizer/UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/check-format.sh
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 300)
# Sanitizers: the unit tests only (the launch tests need the static binary, which the sanitizer
# runtimes cannot be linked into).
cmake -S . -B build-asan -DPACKVISOR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j "$(nproc)" --target packvisor_unit_tests
(cd build-asan && ctest --output-on-failure -j "$(nproc)" -L unit --timeout 300)
# The worker-full container image (issue 14): built and tested where podman can run containers;
# scripts/install-deps.sh does not install podman (building the image takes about 10 minutes and
# the Debian archive), so on a machine without it this says why and skips (docs/containers.md).
bash scripts/test-image.sh
