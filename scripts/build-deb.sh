#!/usr/bin/env bash
# Builds the Debian package packvisor_<version>_<arch>.deb (CPack, CMakeLists.txt; docs/install.md)
# into ./dist (or $1) from a Release build in ./build-deb: the static binary, its man page and
# completion, runtime definitions, example configuration and systemd units. Prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=${1:-dist}
build_dir=build-deb
# Release without debug information (the package carries no -dbg), no test suites.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  "${@:2}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target packvisor packvisor_docs >/dev/null
mkdir -p "$out_dir"
(cd "$build_dir" && cpack -G DEB -B "$PWD/cpack" >/dev/null)
deb=$(ls -t "$build_dir"/cpack/packvisor_*.deb | head -1)
cp "$deb" "$out_dir/"
echo "$out_dir/$(basename "$deb")"
