#!/usr/bin/env bash
# Installs the dependencies, builds packvisor and runs every test suite (unit, integration,
# security) with ctest, then the unit tests again under AddressSanitizer/UBSan and every fuzz
# target for 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage's start, with the seconds since the start: where CI's time goes.
stage() { echo "== test.sh: $1 (at ${SECONDS} s)"; }
stage "install-deps"
bash scripts/install-deps.sh
stage "check-format"
bash scripts/check-format.sh
stage "build (gcc)"
# The product's optimisation without debug information: nothing here reads it, and compiling and
# linking the static executables without it is much faster.
bash scripts/build.sh build -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG"
# The clang build (sanitizers and fuzzing, docs/fuzzing.md: the unit tests under ASan and UBSan,
# each fuzz target's checked-in corpus replayed, then every target fuzzed for 30 s) compiles while
# the suites run: their tests mostly wait on processes, and at nice 19 the compiler takes only the
# CPU time they leave. (The launch tests need the static binary, which the sanitizer runtimes
# cannot be linked into.) Its own session, so that it is stopped with the script.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPACKVISOR_FUZZ=ON >/dev/null
setsid nice -n 19 cmake --build build-fuzz -j "$(nproc)" \
  --target packvisor_unit_tests packvisor_fuzz_targets >build-fuzz/build.log 2>&1 &
clang_build=$!
trap 'kill -- -"$clang_build" 2>/dev/null || true' EXIT
stage "ctest: unit, integration, queue, security (the clang build beside it, at nice 19)"
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 300)
stage "build-fuzz: the rest of the clang build (clang, ASan, UBSan, libFuzzer)"
if ! wait "$clang_build"; then
  tail -n 60 build-fuzz/build.log
  echo "test.sh: the clang build failed (build-fuzz/build.log)" >&2
  exit 1
fi
trap - EXIT
stage "ctest: unit tests under the sanitizers, fuzz corpora replayed"
(cd build-fuzz && ctest --output-on-failure -j "$(nproc)" -L 'unit|fuzz' --timeout 300)
stage "fuzz: every target for 30 s"
bash bench/fuzz.sh 30
stage "container image"
# The worker-full container image (issue 14): built and tested where podman can run containers;
# scripts/install-deps.sh does not install podman (building the image takes about 10 minutes and
# the Debian archive), so on a machine without it this says why and skips (docs/containers.md).
bash scripts/test-image.sh
stage "done"
