#!/usr/bin/env bash
# Output throughput and memory: an action writing 1 GiB of zeros to stdout under a 10 MiB capture
# cap (`packvisor run` of a throw-away pack), against a plain pipe
# `head -c 1073741824 /dev/zero | cat > /dev/null` in the same hyperfine run; then packvisor's
# peak RSS.
#
#   sudo bench/output_bench.sh [PACKVISOR_BINARY]
#
# Goals: throughput >= 0.8x the plain pipe; packvisor peak RSS < 32 MiB.
# The config, pack and helpers are made in a mktemp dir (removed at exit unless KEEP=1); the binary
# is copied there first so a concurrent rebuild cannot change it mid-run.
# Needs: root, hyperfine, gcc, python3, /usr/bin/time (apt-get install -y time).
# Knobs (environment): RUNS (5), WARMUP (1), RSS_RUNS (3), BYTES (1073741824), CAP (10485760),
# CHRT=N runs hyperfine and the RSS runs under `chrt -f N` (SCHED_FIFO),
# SWEEP="CAP ..." extra caps for the peak-RSS-vs-cap diagnostic (default "1048576 20971520";
#   empty to skip), PROFILE=1 also runs strace -c and perf record on packvisor (and strace -c on
#   the pipe's cat) and prints the top of each, KEEP=1 keeps the temp dir.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PV_IN=${1:-$SRC_DIR/build/supervisor/packvisor}
die() { echo "output_bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (packvisor is a root supervisor)"
[[ -x $PV_IN ]] || die "no packvisor binary at $PV_IN"
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
RSS_RUNS=${RSS_RUNS:-3}
BYTES=${BYTES:-1073741824}
CAP=${CAP:-10485760}
SWEEP=${SWEEP-1048576 20971520}
for tool in hyperfine gcc python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
if [[ ! -x /usr/bin/time ]]; then
  apt-get install -y time >/dev/null || die "/usr/bin/time missing and 'apt-get install time' failed"
fi

TMP=$(mktemp -d /tmp/packvisor-output-bench.XXXXXX)
cleanup() { if [[ ${KEEP:-0} == 1 ]]; then echo "kept: $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT
cd "$TMP"
[[ $TMP != *[[:space:]]* ]] || die "temp dir with whitespace: $TMP"

PV=$TMP/packvisor
cp "$PV_IN" "$PV"
echo "packvisor: $PV_IN (sha256 $(sha256sum "$PV" | cut -c1-12), copied to $PV)"
gcc -O2 -o peak_rss "$SRC_DIR/bench/peak_rss.c"

# 1. A config per cap and one pack with one shell action. The pack must be readable by the
#    sandbox's uid (mktemp -d is 0700, but the pack is bound at /pack, so only its own tree counts).
make_config() {  # make_config CAP -> path of a config whose stdout cap is CAP
  local file=$TMP/config-$1.toml
  cat >"$file" <<EOF
packs_base_dir = "packs"
runtime_envs_dir = "$TMP/runtime_envs"
state_dir = "$TMP/state"

[execution]
default_timeout_seconds = 600
max_stdout_bytes = $1
EOF
  echo "$file"
}
mkdir -p packs/outbench/actions
cat >packs/outbench/pack.yaml <<'EOF'
ref: outbench
version: 1.0.0
description: Throw-away pack of bench/output_bench.sh.
EOF
cat >packs/outbench/actions/flood.yaml <<'EOF'
name: flood
description: Writes $BYTES zero bytes to stdout.
runner_type: shell
entry_point: flood.sh
EOF
printf '#!/bin/bash\nexec head -c %s /dev/zero\n' "$BYTES" >packs/outbench/actions/flood.sh
chmod -R a+rX packs
CONFIG=$(make_config "$CAP")

# Sanity: packvisor succeeds, truncates at the cap and counts every byte.
"$PV" --config "$CONFIG" run --json outbench.flood >check.json 2>/dev/null ||
  die "packvisor run outbench.flood failed (see: $PV --config $CONFIG run outbench.flood)"
python3 - check.json "$BYTES" "$CAP" <<'PY' || die "unexpected result of outbench.flood"
import json, sys
r = json.load(open(sys.argv[1]))
total, cap = int(sys.argv[2]), int(sys.argv[3])
text = r["stdout"].encode()
kept = text.rfind(b"\n\n[OUTPUT TRUNCATED")
assert r["status"] == "succeeded", r["status"]
assert r["stdout_truncated"] and 0 < kept and len(text) <= cap, (len(text), cap)
assert kept + r["stdout_bytes_truncated"] == total, (kept, r["stdout_bytes_truncated"], total)
print("check: kept %d bytes + marker (%d <= cap), dropped %d, sum = %d requested" % (
    kept, len(text), r["stdout_bytes_truncated"], total))
PY

PRIO=()
[[ -n ${CHRT:-} ]] && PRIO=(chrt -f "$CHRT")

# 2. Throughput: one hyperfine run, plain pipe vs packvisor (stdout of both to /dev/null).
JSON=$TMP/output_bench.json
"${PRIO[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$JSON" \
  -n pipe "bash -c 'head -c $BYTES /dev/zero | cat > /dev/null'" \
  -n packvisor "$PV --config $CONFIG run outbench.flood"

# 3. Peak RSS: GNU time -v around peak_rss around packvisor. GNU time's "Maximum resident set
#    size" is ru_maxrss of its child: the max over that process and every descendant it reaped,
#    here packvisor and the sandbox's processes (init, bash, head); peak_rss adds packvisor's own
#    VmHWM read at its exit.
rss_run() {  # rss_run CONFIG [ARGS...] -> "gnu_kb self_kb"
  local config=$1; shift
  "${PRIO[@]}" /usr/bin/time -v -o time.txt ./peak_rss "$PV" --config "$config" run "$@" \
    outbench.flood >/dev/null 2>peak.txt || die "packvisor run failed in the RSS run"
  echo "$(awk -F': ' '/Maximum resident set size/ {print $2}' time.txt)" \
       "$(sed -n 's/.*self_kb=\([0-9-]*\).*/\1/p' peak.txt)"
}
for _ in $(seq "$RSS_RUNS"); do rss_run "$CONFIG"; done >rss.txt
: >sweep.txt
for cap in $SWEEP; do
  echo "$cap $(rss_run "$(make_config "$cap")")" >>sweep.txt
done
echo "$CAP $(rss_run "$CONFIG" --json)" >json_rss.txt

# 4. Summary.
python3 - "$JSON" "$BYTES" "$CAP" rss.txt sweep.txt json_rss.txt <<'PY'
import json, statistics, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
gib = int(sys.argv[2]) / 2**30
cap = int(sys.argv[3])
print("\n%.2f GiB to stdout, cap %.1f MiB; %d runs each:" % (gib, cap / 2**20, len(res["pipe"]["times"])))
for name in ("pipe", "packvisor"):
    r = res[name]
    print("  %-10s median %7.3f s  mean %7.3f ± %.3f  min %7.3f  -> %5.2f GiB/s (median)  "
          "cpu user %.3f s sys %.3f s" % (name, r["median"], r["mean"], r["stddev"], r["min"],
                                          gib / r["median"], r["user"], r["system"]))
ratio = res["pipe"]["median"] / res["packvisor"]["median"]
print("throughput packvisor / pipe: %.3f   goal >= 0.80: %s" % (ratio, "MET" if ratio >= 0.8 else "MISSED"))
rows = [tuple(int(x) for x in line.split()) for line in open(sys.argv[4]) if line.strip()]
gnu = [g for g, _ in rows]
own = [s for _, s in rows]
print("peak RSS (%d runs): GNU time max %.2f MiB (packvisor + reaped sandbox processes); "
      "packvisor's own VmHWM max %.2f MiB" % (len(rows), max(gnu) / 1024, max(own) / 1024))
print("peak RSS goal < 32 MiB: %s" % ("MET" if max(gnu) < 32 * 1024 else "MISSED"))
sweep = [tuple(int(x) for x in line.split()) for line in open(sys.argv[5]) if line.strip()]
if sweep:
    sweep.append((cap, max(gnu), max(own)))
    sweep.sort()
    print("peak RSS vs cap (GNU time / own VmHWM):")
    for c, g, s in sweep:
        print("  cap %6.1f MiB: %6.2f / %6.2f MiB" % (c / 2**20, g / 1024, s / 1024))
    if len(sweep) >= 2:
        (c0, g0, _), (c1, g1, _) = sweep[0], sweep[-1]
        print("  slope: %.2f bytes of RSS per byte of cap; intercept %.2f MiB" % (
            (g1 - g0) / ((c1 - c0) / 1024), (g0 - (g1 - g0) / (c1 - c0) * c0) / 1024))
for line in open(sys.argv[6]):
    c, g, s = (int(x) for x in line.split())
    print("with --json (cap %.1f MiB): GNU time %.2f MiB, own %.2f MiB" % (c / 2**20, g / 1024, s / 1024))
PY

# 5. Optional profile of where packvisor's time goes.
if [[ ${PROFILE:-0} == 1 ]]; then
  command -v strace >/dev/null || die "strace not found"
  echo; echo "== strace -c packvisor (supervisor process only, not the sandbox)"
  strace -c -o strace_pv.txt "$PV" --config "$CONFIG" run outbench.flood >/dev/null 2>&1
  head -14 strace_pv.txt
  echo "== strace -c cat of the plain pipe"
  bash -c "head -c $BYTES /dev/zero | strace -c -o $TMP/strace_cat.txt cat > /dev/null"
  head -10 strace_cat.txt
  if command -v perf >/dev/null; then
    echo "== perf record -g packvisor (supervisor process only); top self-time symbols"
    perf record -q -g -o perf.data -- "$PV" --config "$CONFIG" run outbench.flood \
      >/dev/null 2>&1 || true
    perf report -i perf.data --stdio --no-children --sort comm,dso,symbol --percent-limit 1.5 \
      2>/dev/null | grep -E '^ +[0-9]' | head -25
    echo "== perf record -a during one packvisor run (all CPUs); top self-time by command"
    perf record -q -a -o perf_all.data -- "$PV" --config "$CONFIG" run outbench.flood \
      >/dev/null 2>&1 || true
    perf report -i perf_all.data --stdio --no-children --sort comm,dso --percent-limit 2 \
      2>/dev/null | grep -E '^ +[0-9]' | head -15
  fi
fi
