#!/usr/bin/env bash
# Installs the dependencies, builds packvisor and runs the demo: real actions in a real sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
pv=./build/supervisor/packvisor
echo
echo "### packvisor exec: a script of the demo pack, read-only at /pack, in a fresh sandbox"
"$pv" exec --pack-dir "$PWD/examples/packs/hello" -- /bin/sh /pack/actions/sandbox_tour.sh
if [[ -x scripts/demo-run.sh ]]; then bash scripts/demo-run.sh "$pv"; fi
