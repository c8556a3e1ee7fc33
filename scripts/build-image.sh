#!/usr/bin/env bash
# Builds the worker-full image localhost/packvisor:<version> (docs/containers.md) with podman:
# the base root filesystem from Debian's packages with mmdebstrap (no registry of base images
# here; cached per day like scripts/test-deb.sh's), imported as localhost/packvisor-base:bookworm,
# then container/Containerfile built FROM it with the package of scripts/build-deb.sh.
# podman runs with runc and cgroupfs: on hosts with hybrid cgroups crun refuses ("cgroups in
# hybrid mode not supported") and the systemd cgroup manager needs systemd as PID 1.
# Usage: scripts/build-image.sh [DEB]; prints the image name. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-}
[[ -n "$deb" ]] || deb=$(bash scripts/build-deb.sh | tail -1)
deb=$(realpath "$deb")
version=$(basename "$deb" | cut -d_ -f2)
cache=${PACKVISOR_TEST_CACHE:-/var/cache/packvisor-test}
mirror=${PACKVISOR_TEST_MIRROR:-http://deb.debian.org/debian}
security_mirror=${PACKVISOR_TEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
podman=(podman --runtime runc --cgroup-manager=cgroupfs)
mkdir -p "$cache"
base_tar="$cache/bookworm-$(date -u +%Y%m%d).tar"
if [[ ! -f "$base_tar" ]]; then
  echo "build-image: making the bookworm root filesystem ($base_tar)" >&2
  mmdebstrap --quiet --variant=apt --format=tar bookworm "$base_tar.part" \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb $security_mirror bookworm-security main"
  mv "$base_tar.part" "$base_tar"
  find "$cache" -maxdepth 1 -name 'bookworm-*.tar' ! -path "$base_tar" -delete
fi
base=localhost/packvisor-base:bookworm
# Imported again only when the day's root filesystem is newer than the image.
stamp=$(basename "$base_tar")
if [[ "$("${podman[@]}" image inspect --format '{{ index .Labels "packvisor.rootfs" }}' "$base" \
        2>/dev/null)" != "$stamp" ]]; then
  "${podman[@]}" import --change "LABEL packvisor.rootfs=$stamp" --change 'CMD ["/bin/bash"]' \
    "$base_tar" "$base" >/dev/null
fi
context=$(mktemp -d /tmp/packvisor-image.XXXXXX)
trap 'rm -rf "$context"' EXIT
cp container/Containerfile "$deb" "$context/"
image=localhost/packvisor:$version
# --isolation chroot: RUN steps need neither runc's cgroup setup nor a network namespace of their
# own (apt-get reaches the archive through the host's network).
"${podman[@]}" build --quiet --isolation chroot --network host --build-arg "BASE=$base" \
  -t "$image" -f "$context/Containerfile" "$context" >&2
echo "$image"
