#!/usr/bin/env bash
# Start-up cost of one sandboxed /bin/true: packvisor exec against bubblewrap (with and without an
# equivalent seccomp filter) and against bare /bin/true; then packvisor's peak RSS.
#
#   sudo bench/exec_bench.sh [PACKVISOR_BINARY] [BUILD_DIR]
#
# PACKVISOR_BINARY defaults to build/supervisor/packvisor of this checkout; BUILD_DIR (for the sandbox
# library the BPF helper links against) defaults to the build tree that holds the binary. Nothing
# of packvisor is built here: only two tiny helpers (bench/make_bpf.cc, bench/fd_exec.c).
# Needs: root, hyperfine, bwrap, g++, gcc, python3, /usr/bin/time (apt-get install -y time).
# Knobs (environment): RUNS (300), WARMUP (20), RSS_RUNS (10), OUT_DIR (a fresh temp dir),
# CHRT=N runs the timed commands under `chrt -f N` (SCHED_FIFO) so that a loaded machine (e.g.
# parallel compiles) does not dominate the medians; both contenders get the same treatment.
# PHASES=1 also builds bench/phase_timer.cc against the build tree and times the launch's phases
# in-process (policy compile, RunSandbox wall/CPU) plus `packvisor --help` for process start-up.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PV=${1:-$SRC_DIR/build/supervisor/packvisor}
BUILD_DIR=${2:-$(cd "$(dirname "$PV")/.." && pwd)}
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-20}
RSS_RUNS=${RSS_RUNS:-10}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/packvisor-bench.XXXXXX)}
mkdir -p "$OUT_DIR"

die() { echo "exec_bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (packvisor is a root supervisor)"
[[ -x $PV ]] || die "no packvisor binary at $PV"
LIB=$BUILD_DIR/sandbox/libpackvisor_sandbox.a
[[ -f $LIB ]] || die "no sandbox library at $LIB (pass the build dir as \$2)"
for tool in hyperfine bwrap g++ gcc python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
if [[ ! -x /usr/bin/time ]]; then
  apt-get install -y time >/dev/null || die "/usr/bin/time missing and 'apt-get install time' failed"
fi
BWRAP=$(command -v bwrap)

# 1. Helpers: the BPF file (packvisor's own policy, so both sandboxes load the same filter) and a
#    wrapper that opens it on fd 9 for bwrap --seccomp 9 (hyperfine -N has no shell redirections,
#    and the fd needs a fresh offset each run).
g++ -std=c++20 -O2 -I"$SRC_DIR" -o "$OUT_DIR/make_bpf" "$SRC_DIR/bench/make_bpf.cc" "$LIB" \
  $(pkg-config --libs libseccomp libcap) -pthread
gcc -O2 -static -o "$OUT_DIR/fd_exec" "$SRC_DIR/bench/fd_exec.c" 2>/dev/null ||
  gcc -O2 -o "$OUT_DIR/fd_exec" "$SRC_DIR/bench/fd_exec.c"
gcc -O2 -Wall -Wextra -o "$OUT_DIR/raw_sandbox" "$SRC_DIR/bench/raw_sandbox.c"
BPF=$OUT_DIR/policy.bpf
echo "seccomp filter: $("$OUT_DIR/make_bpf" "$BPF") -> $BPF"

BWRAP_ARGS="--unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/lib /lib \
--symlink usr/lib64 /lib64 --symlink usr/bin /bin --proc /proc --dev /dev --tmpfs /tmp"

# Sanity: every command must succeed before it is timed.
"$BWRAP" $BWRAP_ARGS /bin/true || die "bwrap cannot run /bin/true"
"$OUT_DIR/fd_exec" 9 "$BPF" "$BWRAP" $BWRAP_ARGS --seccomp 9 /bin/true ||
  die "bwrap --seccomp cannot run /bin/true"
"$PV" exec -- /bin/true || die "packvisor exec cannot run /bin/true"
"$OUT_DIR/raw_sandbox" "$BPF" 100000 /bin/true || die "raw_sandbox cannot run /bin/true"

# 2. One hyperfine run over all six commands ("raw" is bench/raw_sandbox.c: the floor of a
#    clone-to-exec sandbox of the same shape, nothing of packvisor's own work). "fd_exec true" measures the wrapper's own cost,
#    which is subtracted from bwrap+seccomp for the fair ratio.
JSON=$OUT_DIR/exec_bench.json
PRIO=()
[[ -n ${CHRT:-} ]] && PRIO=(chrt -f "$CHRT")
"${PRIO[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$JSON" \
  -n true "/bin/true" \
  -n fd_exec-true "$OUT_DIR/fd_exec 9 $BPF /bin/true" \
  -n bwrap "$BWRAP $BWRAP_ARGS /bin/true" \
  -n bwrap+seccomp "$OUT_DIR/fd_exec 9 $BPF $BWRAP $BWRAP_ARGS --seccomp 9 /bin/true" \
  -n raw "$OUT_DIR/raw_sandbox $BPF 100000 /bin/true" \
  -n packvisor "$PV exec -- /bin/true"

# 3. Peak RSS (GNU time's "Maximum resident set size": the largest of packvisor and the sandbox
#    processes it reaped).
rss_runs() {
  for _ in $(seq "$RSS_RUNS"); do
    /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'
  done
}
rss_runs "$PV" exec -- /bin/true >"$OUT_DIR/rss_packvisor.txt"
rss_runs "$OUT_DIR/fd_exec" 9 "$BPF" "$BWRAP" $BWRAP_ARGS --seccomp 9 /bin/true \
  >"$OUT_DIR/rss_bwrap.txt"

# 4. Summary.
python3 - "$JSON" "$OUT_DIR/rss_packvisor.txt" "$OUT_DIR/rss_bwrap.txt" <<'PY'
import json, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {name: r["median"] * 1000 for name, r in results.items()}
print("\nmedians (ms), %d runs each:" % len(results["packvisor"]["times"]))
for name in ("true", "fd_exec-true", "bwrap", "bwrap+seccomp", "raw", "packvisor"):
    r = results[name]
    print("  %-14s median %7.3f  mean %7.3f ± %.3f  min %7.3f" % (
        name, med[name], r["mean"] * 1000, r["stddev"] * 1000, r["min"] * 1000))
wrapper = max(med["fd_exec-true"] - med["true"], 0.0)
fair = med["bwrap+seccomp"] - wrapper
print("  fd_exec wrapper overhead: %.3f ms; bwrap+seccomp without it: %.3f ms" % (wrapper, fair))
ratio_raw = med["packvisor"] / med["bwrap+seccomp"]
ratio = med["packvisor"] / fair
print("ratio packvisor / bwrap+seccomp: %.3f (raw %.3f)   goal <= 0.80: %s" % (
    ratio, ratio_raw, "MET" if ratio <= 0.8 else "MISSED"))
print("ratio packvisor / plain bwrap:   %.3f" % (med["packvisor"] / med["bwrap"]))
print("ratio raw clone-to-exec sandbox / bwrap+seccomp: %.3f (the floor of this shape); "
      "packvisor - raw: %+.3f ms" % (med["raw"] / fair, med["packvisor"] - med["raw"]))
for label, path in (("packvisor exec", sys.argv[2]), ("bwrap+seccomp", sys.argv[3])):
    kb = [int(x) for x in open(path).read().split()]
    print("peak RSS %-15s max %6.2f MiB  median %6.2f MiB  (%d runs)" % (
        label, max(kb) / 1024, statistics.median(kb) / 1024, len(kb)))
kb = [int(x) for x in open(sys.argv[2]).read().split()]
print("packvisor peak RSS goal < 8 MiB: %s" % ("MET" if max(kb) < 8 * 1024 else "MISSED"))
PY
if [[ ${PHASES:-0} == 1 ]]; then
  echo
  g++ -std=c++20 -O2 -I"$SRC_DIR" -o "$OUT_DIR/phase_timer" "$SRC_DIR/bench/phase_timer.cc" \
    "$BUILD_DIR/supervisor/libpackvisor_supervisor_core.a" "$BUILD_DIR/envs/libpackvisor_envs.a" "$LIB" \
    $(pkg-config --libs libseccomp libcap tomlplusplus) -lyaml-cpp -pthread
  "${PRIO[@]}" "$OUT_DIR/phase_timer" 200
  "${PRIO[@]}" hyperfine -N --warmup "$WARMUP" --runs 200 --export-json "$OUT_DIR/startup.json" \
    -n true /bin/true -n packvisor-help "$PV --help" >/dev/null
  python3 - "$OUT_DIR/startup.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("  %-16s median %6.3f ms  cpu %6.3f ms" % (
        r["command"], r["median"] * 1000, (r["user"] + r["system"]) * 1000))
PY
fi
echo "raw data: $OUT_DIR"
