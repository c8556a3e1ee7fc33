#!/usr/bin/env bash
# Installs the Debian package on a fresh Debian 12 root filesystem and runs it there
# (docs/install.md): mmdebstrap makes a minimal bookworm (variant "apt": Essential packages and
# apt, nothing else), cached per day in $PACKVISOR_TEST_CACHE (default /var/cache/packvisor-test);
# `apt install ./packvisor_*.deb` inside a chroot pulls the Depends (the demo's interpreters named
# beside it: all Recommends would add npm and ~600 packages, 12 minutes here); then `packvisor
# check` and the demo pack's actions run there with the packaged configuration.
# Needs root, network access to the Debian archive (first run of the day, and the package's
# dependencies: downloaded .debs are cached too) and mmdebstrap.
# Usage: scripts/test-deb.sh [DEB]   (default: builds one with scripts/build-deb.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD
[[ $(id -u) == 0 ]] || { echo "test-deb: needs root (chroot, mounts)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "test-deb: mmdebstrap missing (apt-get install mmdebstrap)" >&2; exit 2; }
deb=${1:-}
[[ -n "$deb" ]] || deb=$(bash scripts/build-deb.sh | tail -1)
deb=$(realpath "$deb")
cache=${PACKVISOR_TEST_CACHE:-/var/cache/packvisor-test}
mirror=${PACKVISOR_TEST_MIRROR:-http://deb.debian.org/debian}
security_mirror=${PACKVISOR_TEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
mkdir -p "$cache/archives/partial"
base="$cache/bookworm-$(date -u +%Y%m%d).tar"
started=$SECONDS
if [[ ! -f "$base" ]]; then
  echo "test-deb: making the bookworm root filesystem ($base)"
  mmdebstrap --quiet --variant=apt --format=tar bookworm "$base.part" \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb $security_mirror bookworm-security main"
  mv "$base.part" "$base"
  # Older days' root filesystems are not kept.
  find "$cache" -maxdepth 1 -name 'bookworm-*.tar' ! -path "$base" -delete
fi

work=$(mktemp -d /var/tmp/packvisor-test-deb.XXXXXX)
root="$work/root"
# Unmounts everything below the root (bound /proc, /sys, /dev, the apt cache, and pack disks the
# supervisor mounted), deepest first, whatever happened; then removes the scratch tree.
cleanup() {
  local status=$?
  if [[ -d "$root" ]]; then
    while read -r target; do
      umount -l "$target" 2>/dev/null || true
    done < <(awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo |
             sort -r)
    if awk -v r="$root" '$5 == r || index($5, r "/") == 1 { found = 1 } END { exit !found }' \
        /proc/self/mountinfo; then
      echo "test-deb: mounts left below $root; not removing it" >&2
      exit "$((status ? status : 1))"
    fi
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
mkdir "$root"
tar -C "$root" -xf "$base"
echo "test-deb: root filesystem ready in $((SECONDS - started)) s"

# The kernel interfaces the supervisor uses, bound from the host. rslave: nothing unmounted
# inside propagates back to the host.
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
mount --bind "$cache/archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
clean_env=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
  DEBIAN_FRONTEND=noninteractive)
# apt and the checks of the package's files: a chroot is enough.
in_chroot() { chroot "$root" "${clean_env[@]}" "$@"; }
# packvisor: not in a chroot, where the kernel refuses new user namespaces (unshare(2): EPERM when
# the caller's root is not its mount namespace's root). A mount namespace of its own whose root
# is the new filesystem (pivot_root; the old root detached) instead, as a container would have.
# Everything mounted in it (pack disks included) goes with it when the command ends.
in_root() {
  unshare --mount --propagation private -- /bin/bash -euc '
    root=$1; shift
    mount --rbind "$root" "$root"
    cd "$root"
    pivot_root . mnt
    cd /
    # The host'"'"'s umount, run against the new root'"'"'s libraries (Debian 12 on both sides).
    /mnt/usr/bin/umount -l /mnt
    exec "$@"' in_root "$root" "${clean_env[@]}" "$@"
}

started=$SECONDS
in_chroot apt-get update -qq
in_chroot apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")" \
  python3-venv nodejs >"$work/apt.log" 2>&1 ||
  { tail -30 "$work/apt.log"; exit 1; }
echo "test-deb: apt install of $(basename "$deb") in $((SECONDS - started)) s:" \
  "$(grep -c '^Setting up ' "$work/apt.log") packages set up"
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }

# What the package's postinst made.
in_chroot getent group packvisor >/dev/null || fail "no group packvisor"
[[ $(stat -c '%a %U' "$root/var/lib/packvisor") == "700 root" ]] || fail "/var/lib/packvisor mode"
[[ -f "$root/etc/packvisor/packvisor.toml" ]] || fail "no /etc/packvisor/packvisor.toml"
grep -q '^socket_group = "packvisor"$' "$root/etc/packvisor/packvisor.toml" ||
  fail "the configuration does not name the socket group"
[[ -L "$root/etc/systemd/system/multi-user.target.wants/packvisor.service" ]] ||
  fail "packvisor.service is not enabled"
echo "test-deb: ok: group packvisor, /var/lib/packvisor 0700, /etc/packvisor/packvisor.toml," \
  "packvisor.service enabled"

in_root packvisor check || fail "packvisor check"
cp -a "$source_dir/examples/packs/hello" "$root/opt/packvisor/packs/hello"
chown -R root:root "$root/opt/packvisor/packs/hello"
in_root packvisor pack list
out=$(in_root packvisor run hello.greet --param name=Ada --param times=2) ||
  fail "hello.greet: $out"
echo "$out"
[[ "$out" == *"Ada"* ]] || fail "hello.greet did not greet Ada"
secrets="$root/root/secrets.json"
(umask 077 && printf '{"api_key": "demo-key"}\n' >"$secrets")
out=$(in_root packvisor run hello.weather --param city=Paris --secrets-file /root/secrets.json) ||
  fail "hello.weather: $out"
echo "$out"
out=$(in_root packvisor run hello.count --json) || fail "hello.count: $out"
echo "$out" | head -c 600
echo
grep -Eq '"status": ?"succeeded"' <<<"$out" || fail "hello.count did not succeed"
in_root packvisor env list
in_root packvisor env rm hello >/dev/null || fail "env rm hello"
echo "test-deb: ok: packvisor check and the demo actions (shell, python, node) ran in the chroot"
