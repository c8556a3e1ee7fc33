#!/usr/bin/env bash
# Installs the dependencies, builds the packvisor binary (into ./build-demo) and runs the demo:
# real actions in a real sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Only the binary, optimized as usual (-O2) but without debug information, which costs a quarter
# of the compile time: no tests (scripts/test.sh builds and runs those, in ./build), no man page.
build_dir=build-demo
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target packvisor
pv=("./$build_dir/supervisor/packvisor" --config examples/packvisor-demo.toml)
step() { printf '\n\033[1m### %s\033[0m\n' "$*"; }

step "packvisor check: what this host offers the sandbox"
"${pv[@]}" check || true

step "packvisor exec: a script of the demo pack, read-only at /pack, in a fresh sandbox"
"${pv[@]}" exec --pack-dir "$PWD/examples/packs/hello" -- /bin/sh /pack/actions/sandbox_tour.sh

step "packvisor pack list"
"${pv[@]}" pack list

step "packvisor run hello.greet (shell): parameters as one JSON line on stdin"
"${pv[@]}" run hello.greet --param name=Ada --param times=2

step "packvisor run hello.weather (python): a secret on stdin, never in argv or environ"
secrets=$(mktemp)
trap 'rm -f "$secrets"' EXIT
chmod 600 "$secrets"
printf '{"api_key": "demo-%s"}\n' "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$secrets"
"${pv[@]}" run hello.weather --param city=Paris --secrets-file "$secrets"

step "packvisor run hello.count (node), as the JSON result object"
"${pv[@]}" run hello.count --json

step "bad input is refused before anything runs"
"${pv[@]}" run hello.greet --param times=9 || echo "(exit status $?)"

step "the pack's environments, on a disk of the pack's own (env rm hello releases it)"
"${pv[@]}" env list
findmnt -n -o TARGET,SOURCE,FSTYPE,SIZE,OPTIONS /tmp/packvisor-demo/runtime_envs/hello || true
