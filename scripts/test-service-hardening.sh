#!/usr/bin/env bash
# Runs packvisor under what config/packvisor.service's hardening does to the daemon, without
# systemd as PID 1 (docs/systemd.md): a mount namespace of its own (slave, as systemd sets it up)
# in which every mount is read-only but /proc, /sys, /dev and the ReadWritePaths
# (ProtectSystem=strict), /home and /root read-only (ProtectHome=read-only), private /tmp and
# /var/tmp (PrivateTmp=yes); no_new_privs (NoNewPrivileges=yes); CAP_SYS_MODULE and CAP_SYSLOG out
# of the bounding set (ProtectKernelModules=, ProtectKernelLogs=). There it runs `check`, the demo
# actions one-shot and through `serve`; then, on the host, the same pack again (its disk, mounted
# only in the daemon's namespace, is found by its loop device) and `env rm`. The seccomp filters
# of RestrictRealtime= and RestrictSUIDSGID= are not emulated. Needs root.
# Usage: scripts/test-service-hardening.sh [PACKVISOR_BINARY]  (default build/supervisor/packvisor)
set -euo pipefail
cd "$(dirname "$0")/.."
pv=$(realpath "${1:-build/supervisor/packvisor}")
id=$$
state=/var/lib/packvisor-hardening-$id
top=/opt/packvisor-hardening-$id
envs=$top/runtime_envs
run=/run/packvisor-hardening-$id
trap '"$pv" --config "$top/packvisor.toml" env rm hello >/dev/null 2>&1 || true
      rm -rf "$state" "$top" "$run"' EXIT
mkdir -p "$state" "$envs" "$top/packs" "$run"
chmod 700 "$state"
cp -a examples/packs/hello "$top/packs/"
cat >"$top/packvisor.toml" <<TOML
packs_base_dir = "$top/packs"
runtime_envs_dir = "$envs"
state_dir = "$state"
[sandbox]
cgroup_parent = "packvisor-hardening-$id"
[server]
socket = "$run/packvisor.sock"
TOML
fail() { echo "test-service-hardening: FAIL: $*" >&2; exit 1; }
# shellcheck disable=SC2016
unshare -m --propagation slave env pv="$pv" cfg="$top/packvisor.toml" state="$state" envs="$envs" \
  run="$run" bash -euo pipefail -c '
  for p in "$state" "$envs" "$run"; do mount --bind "$p" "$p"; done
  for p in /home /root; do mount --bind "$p" "$p"; mount -o remount,bind,ro "$p"; done
  awk "{print \$5}" /proc/self/mountinfo | sort -u | while read -r target; do
    case $target in /proc*|/sys*|/dev*|"$state"|"$envs"|"$run"|/home|/root) continue;; esac
    mount -o remount,bind,ro "$target" 2>/dev/null || true
  done
  mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /var/tmp
  if touch /usr/.packvisor-rw-probe 2>/dev/null; then echo "/usr is writable" >&2; exit 1; fi
  exec setpriv --no-new-privs --bounding-set=-sys_module,-syslog bash -euo pipefail -c "
    \"\$pv\" --config \"\$cfg\" check >/tmp/check.txt || { cat /tmp/check.txt; exit 1; }
    \"\$pv\" --config \"\$cfg\" run hello.greet --param name=Ada
    echo {\\\"api_key\\\":\\\"k\\\"} >/tmp/s.json; chmod 600 /tmp/s.json
    \"\$pv\" --config \"\$cfg\" run hello.weather --param city=Paris --secrets-file /tmp/s.json
    \"\$pv\" --config \"\$cfg\" run hello.count
    \"\$pv\" --config \"\$cfg\" serve 2>/tmp/serve.log & daemon=\$!
    for _ in \$(seq 100); do [ -S \"\$run/packvisor.sock\" ] && break; sleep 0.1; done
    \"\$pv\" --config \"\$cfg\" run --server hello.count
    \"\$pv\" --config \"\$cfg\" run --server hello.weather --param city=Oslo --secrets-file /tmp/s.json
    kill -TERM \$daemon; wait \$daemon
  "
' || fail "in the emulated service namespace"
echo "test-service-hardening: ok: check, one-shot and daemon runs under the unit's hardening"
"$pv" --config "$top/packvisor.toml" run hello.count >/dev/null || fail "run on the host after"
"$pv" --config "$top/packvisor.toml" env rm hello >/dev/null || fail "env rm on the host"
if losetup -a | grep -q "$state/disks"; then fail "a loop device of the test is left"; fi
echo "test-service-hardening: ok: the host reuses and then releases the pack disk the daemon mounted"
