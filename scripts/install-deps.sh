#!/usr/bin/env bash
# Installs every Debian package packvisor needs to build, test and benchmark. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential cmake pkg-config git help2man
  libseccomp-dev libcap-dev libspdlog-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libhttp-parser-dev
  libevent-dev librabbitmq-dev libssl-dev libsodium-dev rabbitmq-server
  python3 python3-venv python3-pip
  bubblewrap hyperfine iproute2 libcap2-bin util-linux procps e2fsprogs clang-format
  clang libfuzzer-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from another repository (which bundles npm and conflicts with Debian's npm):
# install Debian's only when the commands are missing.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
