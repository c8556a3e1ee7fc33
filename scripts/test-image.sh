#!/usr/bin/env bash
# Builds the worker-full image (scripts/build-image.sh) and runs it with the flags of
# docs/containers.md: `packvisor check`, the demo pack's actions (shell, Python with its
# environment build, Node) one-shot and through `serve`, and security probes in a sandbox inside
# the container compared line by line with the same probes in a sandbox on this host. Skips,
# saying why, where podman cannot run a container here; never passes without having run.
# Usage: scripts/test-image.sh [DEB]   (IMAGE=name skips the build and tests that image)
set -euo pipefail
cd "$(dirname "$0")/.."
skip() { echo "test-image: SKIP: $*"; exit 0; }
fail() { echo "test-image: FAIL: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || skip "needs root (the container's flags grant host capabilities)"
command -v podman >/dev/null || skip "podman is not installed (apt-get install podman runc)"
command -v runc >/dev/null || skip "runc is not installed (crun refuses hybrid cgroup hosts)"
podman=(podman --runtime runc --cgroup-manager=cgroupfs)
# The flags of docs/containers.md. ulimits: podman's defaults (1048576 open files) exceed what a
# process without CAP_SYS_RESOURCE may set; these fit under the host's hard limits.
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
flags=(
  --cap-add SYS_ADMIN --cap-add MKNOD
  --security-opt 'unmask=/proc/*'
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns=host
  --device /dev/loop-control --device-cgroup-rule 'b 7:* rwm'
  --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc"
)

image=${IMAGE:-}
started=$SECONDS
if [[ -z "$image" ]]; then
  image=$(bash scripts/build-image.sh "${1:-}" | tail -1) || fail "scripts/build-image.sh"
  echo "test-image: built $image in $((SECONDS - started)) s" \
    "($("${podman[@]}" image inspect --format '{{.Size}}' "$image" | numfmt --to=si)B)"
fi
probe_output=$("${podman[@]}" run --rm "${flags[@]}" --entrypoint /bin/true "$image" 2>&1) ||
  skip "podman cannot start a container here: $probe_output"

work=$(mktemp -d /tmp/packvisor-test-image.XXXXXX)
name=packvisor-test-image-$$
trap '"${podman[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/probe"
cp build/security-tests/probe "$work/probe/" 2>/dev/null ||
  fail "build/security-tests/probe missing: cmake --build build --target packvisor_probe"
printf '{"api_key": "demo-key"}\n' >"$work/secrets.json"
chmod 0600 "$work/secrets.json"
run=("${podman[@]}" run --rm "${flags[@]}" -v "$PWD/examples/packs:/opt/packvisor/packs:ro"
  -v "$work/secrets.json:/run/secrets.json:ro" -v "$work/probe:/opt/probe:ro" "$image")

"${run[@]}" check >"$work/check.txt" 2>&1 || { cat "$work/check.txt"; fail "packvisor check"; }
grep '^result:' "$work/check.txt"
out=$("${run[@]}" run hello.greet --param name=Ada 2>&1) || fail "hello.greet: $out"
[[ "$out" == *"Hello, Ada!"* ]] || fail "hello.greet: $out"
out=$("${run[@]}" run hello.weather --param city=Paris --secrets-file /run/secrets.json 2>&1) ||
  fail "hello.weather: $out"
[[ "$out" == *'"forecast"'* ]] || fail "hello.weather: $out"
out=$("${run[@]}" run hello.count --json 2>&1) || fail "hello.count: $out"
grep -Eq '"status": ?"succeeded"' <<<"$out" || fail "hello.count: $out"
echo "test-image: ok: check, hello.greet (shell), hello.weather (python), hello.count (node)"

# serve: the command picks the mode; a client in the same container.
"${podman[@]}" run -d --name "$name" "${flags[@]}" \
  -v "$PWD/examples/packs:/opt/packvisor/packs:ro" "$image" serve >/dev/null
for _ in $(seq 100); do
  "${podman[@]}" exec "$name" test -S /run/packvisor/packvisor.sock && break
  sleep 0.2
done
out=$("${podman[@]}" exec "$name" packvisor run --server hello.count 2>&1) ||
  fail "run --server in the serve container: $out"
"${podman[@]}" stop -t 40 "$name" >/dev/null
echo "test-image: ok: serve, and run --server hello.count through it"

# The same probes in a sandbox on the host and in a sandbox in the container: the same results.
cases=(mount umount2 pivot_root chroot fsopen open_tree move_mount mount_setattr setns keyctl
  add_key bpf perf_event_open userfaultfd ptrace process_vm_readv kexec_load init_module reboot
  swapon syslog settimeofday clock_settime open_by_handle_at sethostname io_uring_setup
  clone_newuser unshare_newuser unshare_newns mknod_chr mknod_blk ioctl_tiocsti socket_packet
  socket_vsock socket_alg socket_key socket_netlink_audit personality_linux32 fds proc_exe_write)
# These end the process (SIGSYS: foreign system call ABIs): one sandbox each.
killers=(int80_getpid x32_getpid)
probe_cfg="$work/host.toml"
printf 'state_dir = "%s/state"\nruntime_envs_dir = "%s/envs"\n' "$work" "$work" >"$probe_cfg"
host_pv=${PACKVISOR:-build/supervisor/packvisor}
host_probe() {
  "$host_pv" --config "$probe_cfg" exec --pack-dir "$work/probe" -- /pack/probe "$@" 2>/dev/null ||
    echo "exit status $?"
}
container_probe() {
  "${run[@]}" exec --pack-dir /opt/probe -- /pack/probe "$@" 2>/dev/null || echo "exit status $?"
}
{ host_probe "${cases[@]}"; for c in "${killers[@]}"; do host_probe "$c"; done; } >"$work/probes.host"
{ container_probe "${cases[@]}"; for c in "${killers[@]}"; do container_probe "$c"; done; } \
  >"$work/probes.container"
[[ $(grep -c ' reached$' "$work/probes.host") -ge ${#cases[@]} ]] ||
  fail "the probes did not all run on the host: $(tail -3 "$work/probes.host")"
# Pipe inode numbers differ from run to run.
sed -i 's/pipe:\[[0-9]*\]/pipe:[N]/' "$work/probes.host" "$work/probes.container"
if ! diff "$work/probes.host" "$work/probes.container" >"$work/probes.diff"; then
  cat "$work/probes.diff" >&2
  fail "the sandbox in the container answers the probes differently from the host's"
fi
denied=$(grep -cE 'errno=(1|38|97)$|^exit status' "$work/probes.container" || true)
echo "test-image: ok: $((${#cases[@]} + ${#killers[@]})) probes give the same results in the container as on the host" \
  "($denied denied by the sandbox's policy)"
# The cgroup limits hold inside the container: 700 MiB against the default memory_max_mb (512).
out=$("${run[@]}" exec --json -- /usr/bin/python3 -c 'x = bytearray(700 << 20); print("allocated")' \
  2>/dev/null || true)
grep -q 'out of memory (limit 512 MiB)' <<<"$out" ||
  fail "the execution's memory limit did not hold in the container: $out"
echo "test-image: ok: an execution allocating 700 MiB is killed at its 512 MiB cgroup limit"
echo "test-image: done in $((SECONDS - started)) s"
