#!/usr/bin/env bash
# What the per-execution cgroup costs a launch: `packvisor exec -- /bin/true` with the cgroup
# (created with its limits, the child moved or cloned into it, usage read, the group killed and
# removed) against the same binary launching without one (PACKVISOR_TEST_NO_CGROUP=1, honoured
# only by the test-only packvisor-test-hooks binary). Goal (issue 6): under 1 ms added per
# execution at the median.
#
#   sudo bench/cgroup_bench.sh [PACKVISOR_TEST_HOOKS_BINARY]
#
# The binary defaults to build/supervisor/packvisor-test-hooks of this checkout; it is copied into
# the temp dir first, so a concurrent rebuild cannot change it mid-run. Both modes run the same
# copy with the same config (a cgroup parent of the benchmark's own, removed at the end), both
# through `env` (so that neither pays for an extra exec the other does not), in ROUNDS hyperfine
# runs whose order alternates, so that a drift in machine load hits both modes alike.
# Two scenarios, because on cgroup v1 the answer depends on the gap between launches:
#   back-to-back  launches follow each other at once (a busy supervisor);
#   isolated      GAP_MS of idle before each launch (hyperfine --prepare "sleep"), as for a
#                 supervisor that runs one execution now and then. Moving the child into its v1
#                 cgroups (a cgroup.procs write) takes the kernel's global cgroup_threadgroup_rwsem
#                 for writing; without the `favordynmods` mount option that waits for an RCU grace
#                 period unless another migration (anyone's) happened within the last one.
# Then bench/cgroup_phase.cc (built against the sandbox library of the binary's build tree) times
# the supervisor-side steps alone in one process: create+limits, adopt, read usage, kill+remove;
# that figure is free of the scheduling noise of whole launches on a busy machine.
# Needs: root, hyperfine, a cgroup back end (v2, or v1 memory+pids+cpu); for the phases g++ and
# pkg-config (libseccomp, libcap).
# Knobs (environment): RUNS per mode and round (200; isolated: RUNS/2), WARMUP (20), ROUNDS (3),
# GAP_MS (50; 0 skips the isolated scenario), PHASES (1; 0 skips the in-process timing),
# PHASE_RUNS (500; isolated: PHASE_RUNS/5),
# CHRT=N runs hyperfine under `chrt -f N` (SCHED_FIFO; both modes inherit it),
# KEEP=1 keeps the temp dir (hyperfine JSON, config) instead of removing it.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PV_IN=${1:-$SRC_DIR/build/supervisor/packvisor-test-hooks}
[[ -x $PV_IN ]] && PV_IN=$(cd "$(dirname "$PV_IN")" && pwd)/$(basename "$PV_IN")
BUILD_DIR=$(cd "$(dirname "$PV_IN")/.." 2>/dev/null && pwd || true)
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-20}
ROUNDS=${ROUNDS:-3}
PHASES=${PHASES:-1}
GAP_MS=${GAP_MS:-50}
PHASE_RUNS=${PHASE_RUNS:-500}
PYTHON=/usr/bin/python3
die() { echo "cgroup_bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (packvisor is a root supervisor)"
[[ -x $PV_IN ]] || die "no packvisor-test-hooks binary at $PV_IN"
command -v hyperfine >/dev/null || die "hyperfine not found"
[[ -x $PYTHON ]] || die "$PYTHON not found"

TMP=$(mktemp -d /tmp/packvisor-cgroup-bench.XXXXXX)
PARENT=pvbench-$$
cleanup() {
  # The benchmark's cgroup parent, in every hierarchy (its children are gone with each run).
  find /sys/fs/cgroup -mindepth 1 -type d -name "$PARENT" -prune -exec rmdir {} + 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
cd "$TMP"
PV=$TMP/packvisor-test-hooks
cp "$PV_IN" "$PV"
echo "binary: $PV_IN (sha256 $(sha256sum "$PV" | cut -c1-12), copied to $PV)"
cat >bench.toml <<EOF
[sandbox]
cgroup_parent = "$PARENT"
EOF

# Sanity: with the cgroup the action sees itself in {parent}/{name}; without, it does not; both
# succeed; and no execution cgroup is left behind.
with=$(env PACKVISOR_TEST_NO_CGROUP=0 "$PV" --config bench.toml exec -- /bin/cat /proc/self/cgroup)
without=$(env PACKVISOR_TEST_NO_CGROUP=1 "$PV" --config bench.toml exec -- /bin/cat /proc/self/cgroup)
grep -q "/$PARENT/" <<<"$with" || die "with cgroups the action is not in $PARENT: $with"
! grep -q "/$PARENT/" <<<"$without" || die "PACKVISOR_TEST_NO_CGROUP=1 still made a cgroup"
echo "with the cgroup, the action's /proc/self/cgroup:"
grep "/$PARENT/" <<<"$with" | sed 's/^/  /'
env PACKVISOR_TEST_NO_CGROUP=0 "$PV" --config bench.toml exec -- /bin/true || die "cgroup run failed"
env PACKVISOR_TEST_NO_CGROUP=1 "$PV" --config bench.toml exec -- /bin/true || die "plain run failed"

PRIO=()
[[ -n ${CHRT:-} ]] && PRIO=(chrt -f "$CHRT")
CMD_CG="env PACKVISOR_TEST_NO_CGROUP=0 $PV --config $TMP/bench.toml exec -- /bin/true"
CMD_NO="env PACKVISOR_TEST_NO_CGROUP=1 $PV --config $TMP/bench.toml exec -- /bin/true"
# scenario NAME RUNS [PREPARE]: ROUNDS hyperfine runs of both modes, then the summary.
scenario() {
  local name=$1 runs=$2 prepare=()
  [[ -n ${3:-} ]] && prepare=(--prepare "$3")
  for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then order=(cgroup "$CMD_CG" no-cgroup "$CMD_NO"); else
      order=(no-cgroup "$CMD_NO" cgroup "$CMD_CG"); fi
    "${PRIO[@]}" hyperfine -N --style basic --warmup "$WARMUP" --runs "$runs" "${prepare[@]}" \
      --export-json "$name-round$round.json" -n "${order[0]}" "${order[1]}" \
      -n "${order[2]}" "${order[3]}" >/dev/null
  done
  echo
  echo "== $name${3:+ (before each launch: $3)}"
  "$PYTHON" - "$name"-round*.json <<'PY'
import json, random, statistics, sys
times = {"cgroup": [], "no-cgroup": []}
rounds = []
for path in sys.argv[1:]:
    med = {}
    for r in json.load(open(path))["results"]:
        times[r["command"]] += [t * 1000 for t in r["times"]]
        med[r["command"]] = r["median"] * 1000
    rounds.append(med["cgroup"] - med["no-cgroup"])
print("%d rounds, %d runs per mode in all" % (len(rounds), len(times["cgroup"])))
for name in ("no-cgroup", "cgroup"):
    t = times[name]
    q = statistics.quantiles(t, n=20)
    print("  %-9s median %7.3f ms  p5 %7.3f  p95 %7.3f  mean %7.3f" % (
        name, statistics.median(t), q[0], q[-1], statistics.mean(t)))
diff = statistics.median(times["cgroup"]) - statistics.median(times["no-cgroup"])
random.seed(1)
boot = sorted(
    statistics.median(random.choices(times["cgroup"], k=len(times["cgroup"]))) -
    statistics.median(random.choices(times["no-cgroup"], k=len(times["no-cgroup"])))
    for _ in range(500))
print("median added by the cgroup: %.3f ms (bootstrap 95%%: %.3f .. %.3f; per round: %s)" % (
    diff, boot[12], boot[-13], ", ".join("%.3f" % d for d in rounds)))
print("ratio cgroup / no-cgroup: %.3f" % (
    statistics.median(times["cgroup"]) / statistics.median(times["no-cgroup"])))
print("goal < 1 ms added at the median: %s" % ("MET" if diff < 1.0 else "MISSED"))
PY
}
scenario back-to-back "$RUNS"
if (( GAP_MS > 0 )); then
  scenario isolated $(( RUNS / 2 )) "sleep $(awk "BEGIN {print $GAP_MS / 1000}")"
fi
left=$(find /sys/fs/cgroup -mindepth 2 -path "*/$PARENT/*" -type d 2>/dev/null | wc -l)
(( left == 0 )) || die "$left execution cgroup(s) left under $PARENT"

if [[ $PHASES == 1 ]]; then
  LIB=$BUILD_DIR/sandbox/libpackvisor_sandbox.a
  [[ -f $LIB ]] || die "no sandbox library at $LIB (PHASES=0 skips the in-process timing)"
  g++ -std=c++20 -O2 -I"$SRC_DIR" -o cgroup_phase "$SRC_DIR/bench/cgroup_phase.cc" "$LIB" \
    $(pkg-config --libs libseccomp libcap) -pthread
  echo
  "${PRIO[@]}" ./cgroup_phase "$PARENT" "$PHASE_RUNS"
  if (( GAP_MS > 0 )); then "${PRIO[@]}" ./cgroup_phase "$PARENT" $(( PHASE_RUNS / 5 )) "$GAP_MS"; fi
fi
