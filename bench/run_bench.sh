#!/usr/bin/env bash
# Cost of one no-op action: `packvisor run hello.noop` (the demo config) against the same script
# run by bare bash, and under bubblewrap with a mount layout equivalent to packvisor's sandbox,
# with and without packvisor's own seccomp filter. Then peak RSS.
#
#   sudo bench/run_bench.sh [PACKVISOR_BINARY] [BUILD_DIR]
#
# PACKVISOR_BINARY defaults to build/supervisor/packvisor of this checkout; BUILD_DIR (for the sandbox
# library bench/make_bpf.cc links against) defaults to the build tree that holds the binary. The
# binary is copied into the temp dir first, so a concurrent rebuild cannot change it mid-run.
# Needs: root, hyperfine, bwrap, g++, gcc, python3, pkg-config (libseccomp, libcap).
# Knobs (environment): RUNS (300, at least 200), WARMUP (20), RSS_RUNS (10),
# CHRT=N runs hyperfine under `chrt -f N` (SCHED_FIFO; every contender inherits it),
# KEEP=1 keeps the temp dir (hyperfine JSON, helpers, BPF file) instead of removing it.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PV_IN=${1:-$SRC_DIR/build/supervisor/packvisor}
die() { echo "run_bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (packvisor is a root supervisor)"
[[ -x $PV_IN ]] || die "no packvisor binary at $PV_IN"
PV_IN=$(cd "$(dirname "$PV_IN")" && pwd)/$(basename "$PV_IN")
BUILD_DIR=$(cd "${2:-$(dirname "$PV_IN")/..}" && pwd)
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-20}
RSS_RUNS=${RSS_RUNS:-10}
(( RUNS >= 200 )) || die "RUNS must be at least 200"
LIB=$BUILD_DIR/sandbox/libpackvisor_sandbox.a
[[ -f $LIB ]] || die "no sandbox library at $LIB (pass the build dir as \$2)"
for tool in hyperfine bwrap g++ gcc python3 pkg-config; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
BWRAP=$(command -v bwrap)
BASH_BIN=/bin/bash
CONFIG=$SRC_DIR/examples/packvisor-demo.toml
PACK=$SRC_DIR/examples/packs/hello
SCRIPT=$PACK/actions/noop.sh
[[ -f $CONFIG && -f $SCRIPT ]] || die "demo config or hello pack missing under $SRC_DIR/examples"

TMP=$(mktemp -d /tmp/packvisor-run-bench.XXXXXX)
cleanup() { if [[ ${KEEP:-0} == 1 ]]; then echo "kept: $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT
cd "$TMP"

PV=$TMP/packvisor
cp "$PV_IN" "$PV"
echo "packvisor: $PV_IN (sha256 $(sha256sum "$PV" | cut -c1-12), copied to $PV)"

# 1. Helpers: packvisor's own seccomp policy as a BPF file (so bwrap loads exactly the same filter)
#    and a wrapper that opens files on given descriptors for bwrap's --seccomp FD / --file FD.
g++ -std=c++20 -O2 -I"$SRC_DIR" -o make_bpf "$SRC_DIR/bench/make_bpf.cc" "$LIB" \
  $(pkg-config --libs libseccomp libcap) -pthread
gcc -O2 -static -o fds_exec "$SRC_DIR/bench/fds_exec.c" 2>/dev/null ||
  gcc -O2 -o fds_exec "$SRC_DIR/bench/fds_exec.c"
gcc -O2 -o peak_rss "$SRC_DIR/bench/peak_rss.c"
echo "seccomp filter: $(./make_bpf policy.bpf) -> policy.bpf"

# 2. bwrap arguments equivalent to packvisor's mount plan (sandbox/mounts.cc BuildMountPlan):
#    - /usr bound read-only; /bin /sbin /lib /lib32 /lib64 /libx32 as on the host (symlinks here);
#    - /etc on the tmpfs root: alternatives and ssl bound read-only, localtime as a symlink, the
#      other small entries of kEtcEntries *copied* (packvisor writes them into its tmpfs; bwrap
#      --file FD does the same), passwd and group synthetic (copied from files made here);
#    - the pack ro-bound at /pack (cwd), --proc /proc (bwrap covers sys, sysrq-trigger, irq, bus
#      read-only like packvisor), --dev /dev (tmpfs + null zero full random urandom tty),
#      --tmpfs /tmp; all namespaces, uid/gid 1000 in a user namespace, hostname, clean env.
#    Not replicated: packvisor's per-execution cgroup (memory/pids/cpu), rlimits, /dev/shm size,
#    the pre-release verification and the state-dir bookkeeping of `run`. Those are its own cost.
BW=(--unshare-all --die-with-parent --new-session --uid 1000 --gid 1000 --hostname packvisor
    --ro-bind /usr /usr)
for entry in /bin /sbin /lib /lib32 /lib64 /libx32; do
  if [[ -L $entry ]]; then BW+=(--symlink "$(readlink "$entry")" "$entry")
  elif [[ -d $entry ]]; then BW+=(--ro-bind "$entry" "$entry"); fi
done
BW+=(--dir /etc)
FDS=(9="$TMP/policy.bpf")
next_fd=10
copy_file() {  # copy_file HOST_FILE SANDBOX_PATH
  FDS+=("$next_fd=$1")
  BW+=(--file "$next_fd" "$2")
  next_fd=$((next_fd + 1))
}
for name in ld.so.cache ld.so.conf ld.so.conf.d alternatives ssl ca-certificates localtime \
    timezone nsswitch.conf hosts host.conf gai.conf protocols services python3 python3.11 npmrc; do
  path=/etc/$name
  if [[ -L $path ]]; then
    BW+=(--symlink "$(readlink "$path")" "$path")
  elif [[ $name == alternatives || $name == ssl ]]; then
    [[ -d $path ]] && BW+=(--ro-bind "$path" "$path")
  elif [[ -d $path ]]; then
    BW+=(--dir "$path")
    while IFS= read -r -d '' sub; do
      if [[ -d $sub ]]; then BW+=(--dir "$sub")
      elif [[ -L $sub ]]; then BW+=(--symlink "$(readlink "$sub")" "$sub")
      else copy_file "$sub" "$sub"; fi
    done < <(find "$path" -mindepth 1 -print0 | sort -z)
  elif [[ -f $path ]]; then
    copy_file "$path" "$path"
  fi
done
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\naction:x:1000:1000:action:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >passwd
printf 'root:x:0:\naction:x:1000:\nnogroup:x:65534:\n' >group
copy_file "$TMP/passwd" /etc/passwd
copy_file "$TMP/group" /etc/group
BW+=(--ro-bind "$PACK" /pack --chdir /pack --proc /proc --dev /dev --tmpfs /tmp
     --clearenv --setenv PATH /usr/local/bin:/usr/bin:/bin --setenv HOME /tmp --setenv TMPDIR /tmp
     --setenv LANG C.UTF-8)
ACTION=("$BASH_BIN" /pack/actions/noop.sh)
echo "bwrap: ${#BW[@]} arguments, $((next_fd - 10)) copied /etc files"

# hyperfine -N splits commands on whitespace: none of the paths above may contain any.
for word in "$TMP" "$PACK" "$CONFIG" "${BW[@]}" "${FDS[@]}"; do
  [[ $word != *[[:space:]]* ]] || die "path with whitespace not supported: '$word'"
done

# Sanity: every command must succeed before it is timed.
"$BASH_BIN" "$SCRIPT" || die "bash cannot run $SCRIPT"
./fds_exec "${FDS[@]}" -- "$BWRAP" "${BW[@]}" "${ACTION[@]}" || die "bwrap cannot run the action"
./fds_exec "${FDS[@]}" -- "$BWRAP" "${BW[@]}" --seccomp 9 "${ACTION[@]}" ||
  die "bwrap --seccomp cannot run the action"
./fds_exec "${FDS[@]}" -- "$BWRAP" "${BW[@]}" --seccomp 9 /bin/sh -c \
  'test "$(cat /etc/ld.so.conf)" = "$(cat /etc/ld.so.conf)" && test -r /pack/actions/noop.sh &&
   test "$(id -u)" = 1000 && grep -q "^Seccomp:.2" /proc/self/status' ||
  die "bwrap sandbox is not as expected"
"$PV" --config "$CONFIG" run hello.noop 2>/dev/null || die "packvisor run hello.noop failed"

# 3. One hyperfine run. "fds_exec bash" is the wrapper's own cost (opening the BPF and /etc files
#    and one extra exec); it is subtracted from both bwrap medians for the fair ratios.
JSON=$TMP/run_bench.json
PRIO=()
[[ -n ${CHRT:-} ]] && PRIO=(chrt -f "$CHRT")
"${PRIO[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$JSON" \
  -n bash "$BASH_BIN $SCRIPT" \
  -n fds_exec-bash "$TMP/fds_exec ${FDS[*]} -- $BASH_BIN $SCRIPT" \
  -n bwrap "$TMP/fds_exec ${FDS[*]} -- $BWRAP ${BW[*]} ${ACTION[*]}" \
  -n bwrap+seccomp "$TMP/fds_exec ${FDS[*]} -- $BWRAP ${BW[*]} --seccomp 9 ${ACTION[*]}" \
  -n packvisor-run "$PV --config $CONFIG run hello.noop"

# 4. Peak RSS. peak_rss prints packvisor's own VmHWM (at its exit) and wait4's ru_maxrss, which is
#    GNU time's "Maximum resident set size": the max over packvisor and every process it reaped.
for _ in $(seq "$RSS_RUNS"); do
  ./peak_rss "$PV" --config "$CONFIG" run hello.noop 2>&1 >/dev/null | grep '^peak_rss'
done >rss_packvisor.txt
for _ in $(seq "$RSS_RUNS"); do
  ./peak_rss ./fds_exec "${FDS[@]}" -- "$BWRAP" "${BW[@]}" --seccomp 9 "${ACTION[@]}" 2>&1 \
    >/dev/null | grep '^peak_rss'
done >rss_bwrap.txt

# 5. Summary.
python3 - "$JSON" rss_packvisor.txt rss_bwrap.txt <<'PY'
import json, re, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {name: r["median"] * 1000 for name, r in results.items()}
print("\nmedians (ms), %d runs each:" % len(results["packvisor-run"]["times"]))
for name in ("bash", "fds_exec-bash", "bwrap", "bwrap+seccomp", "packvisor-run"):
    r = results[name]
    print("  %-14s median %7.3f  mean %7.3f ± %.3f  min %7.3f  cpu %6.3f" % (
        name, med[name], r["mean"] * 1000, r["stddev"] * 1000, r["min"] * 1000,
        (r["user"] + r["system"]) * 1000))
wrapper = max(med["fds_exec-bash"] - med["bash"], 0.0)
bw = med["bwrap"] - wrapper
bws = med["bwrap+seccomp"] - wrapper
pv = med["packvisor-run"]
print("  fds_exec wrapper overhead: %.3f ms; without it: bwrap %.3f ms, bwrap+seccomp %.3f ms"
      % (wrapper, bw, bws))
print("ratio packvisor run / bwrap+seccomp: %.3f (raw %.3f)" % (pv / bws, pv / med["bwrap+seccomp"]))
print("ratio packvisor run / bwrap:         %.3f (raw %.3f)" % (pv / bw, pv / med["bwrap"]))
print("ratio packvisor run / bare bash:     %.3f" % (pv / med["bash"]))
print("overhead over bare bash: packvisor %.3f ms, bwrap+seccomp %.3f ms" % (
    pv - med["bash"], bws - med["bash"]))
for label, path in (("packvisor run", sys.argv[2]), ("bwrap+seccomp", sys.argv[3])):
    rows = [dict(re.findall(r"(\w+)=(-?\d+)", line)) for line in open(path)]
    self_kb = [int(r["self_kb"]) for r in rows]
    tree_kb = [int(r["tree_kb"]) for r in rows]
    print("peak RSS %-14s own VmHWM max %5.2f MiB; GNU-time-style max (incl. reaped children) "
          "%5.2f MiB  (%d runs)" % (label, max(self_kb) / 1024, max(tree_kb) / 1024, len(rows)))
PY
