#!/usr/bin/env bash
# Runtime environments (issue 4): what a ready environment costs an execution, how long a first
# build takes against building the same venv by hand, and whether concurrent first executions
# build once.
#
#   sudo bench/env_bench.sh [PACKVISOR_BINARY]
#
# PACKVISOR_BINARY defaults to build/supervisor/packvisor of this checkout; it is copied into the temp
# dir first, so a concurrent rebuild cannot change it mid-run. Nothing is built. Works offline:
# the pack carries its own wheel (demo-pkg 1.0, made here with zipfile) and the config sets
# PIP_NO_INDEX / PIP_FIND_LINKS for builds and install_network = false.
# Needs: root, hyperfine, /usr/bin/python3 with python3-pip and python3-venv (ensurepip wheels).
#
# 1. One `hyperfine -N` run (>= 100 runs each) of a python action that imports nothing:
#      py-env      `run envbench.noop_py`: the built-in python runtime, its environment ready;
#      pysys       `run envbench.noop_sys`: the same file run by a custom runtime "pysys" (temp
#                  runtimes_dir) with the same interpreter (/usr/bin/python3 -u) and no
#                  [environment] (no digest check, no marker, no lock, no /env);
#      pysys-venv  `run envbench.noop_sysvenv`: like pysys, but its interpreter is a venv-style
#                  layout shipped in the pack (/pack/pyhome/bin/python3 -> /usr/bin/python3 and a
#                  pyvenv.cfg), so Python's own start-up does exactly what /env/bin/python3 does
#                  (venv site-packages only; the system dist-packages' *.pth files are skipped);
#      host-sys, host-venv: /usr/bin/python3 -u and the built environment's bin/python3 -u on
#                  the host, no sandbox: the interpreters' own difference.
#    Commands run in the order py-env, pysys, pysys-venv, host-sys, host-venv, py-env#2,
#    pysys#2, so a drift over the run shows as a difference between the two copies.
# 2. One hyperfine run (>= 10 runs): `packvisor env setup envbench` from an empty
#    runtime_envs_dir (--prepare: `env rm envbench`) against the classic manual way,
#    `python3 -m venv DIR && DIR/bin/pip install --no-index --find-links WHEELS -r
#    requirements.txt` (venv with pip; --prepare: rm -rf DIR). Then du -sh of both.
# 3. Eight concurrent first executions: from an empty runtime_envs_dir, 8 × `packvisor --config C
#    --log-level info run envbench.noop_py` started at once; total wall time, exit statuses and
#    builds (lines "environment envbench/python: create" in their combined stderr); 5 rounds.
#
# Knobs (environment): RUNS (200, >= 100), WARMUP (20), BUILD_RUNS (10, >= 10), ROUNDS (5),
# CONC (8), NICE=N runs the part-1 hyperfine under `nice -n N` (e.g. -20; every contender
# inherits it; parts 2 and 3 are seconds long and CPU-heavy, they run at normal priority).
# CHRT=N (`chrt -f N`, SCHED_FIFO, as in exec_bench.sh) is accepted but checked first: with a
# cgroup v1 cpu controller the kernel refuses to move a real-time task into the execution's new
# cgroup (cpu.rt_runtime_us = 0: "write .../cgroup.procs: Invalid argument"), so `run` fails
# under SCHED_FIFO there and the script stops with that message; use NICE instead.
# PROFILE=1 adds perf stat of the supervisor process (CPU, page faults) after part 1,
# KEEP=1 keeps the temp dir (hyperfine JSON, logs, config, pack).
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PV_IN=${1:-$SRC_DIR/build/supervisor/packvisor}
die() { echo "env_bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (packvisor is a root supervisor)"
[[ -x $PV_IN ]] || die "no packvisor binary at $PV_IN"
PV_IN=$(cd "$(dirname "$PV_IN")" && pwd)/$(basename "$PV_IN")
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-20}
BUILD_RUNS=${BUILD_RUNS:-10}
ROUNDS=${ROUNDS:-5}
CONC=${CONC:-8}
(( RUNS >= 100 )) || die "RUNS must be at least 100"
(( BUILD_RUNS >= 10 )) || die "BUILD_RUNS must be at least 10"
PY=/usr/bin/python3
command -v hyperfine >/dev/null || die "hyperfine not found"
[[ -x $PY ]] || die "$PY not found"
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip (apt-get install python3-pip)"
"$PY" -c 'import ensurepip' 2>/dev/null || die "$PY has no ensurepip (apt-get install python3-venv)"

TMP=$(mktemp -d /tmp/packvisor-env-bench.XXXXXX)
cleanup() { if [[ ${KEEP:-0} == 1 ]]; then echo "kept: $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT
chmod 0755 "$TMP"
cd "$TMP"
umask 022

PV=$TMP/packvisor
cp "$PV_IN" "$PV"
echo "packvisor: $PV_IN (sha256 $(sha256sum "$PV" | cut -c1-12), copied to $PV)"

# --- The pack, the wheel, the runtimes, the config ------------------------------------------
PACKS=$TMP/packs
PACK=$PACKS/envbench
ENVS=$TMP/envs
STATE=$TMP/state
mkdir -p "$PACK/actions" "$PACK/wheels" "$PACK/pyhome/bin" "$TMP/runtimes"
cat >"$PACK/pack.yaml" <<'EOF'
ref: envbench
version: "1.0"
description: env_bench.sh - one dependency (an offline wheel) and a python action that imports nothing.
EOF
: >"$PACK/actions/noop.py"  # imports nothing, does nothing
for spec in "noop_py python" "noop_sys pysys" "noop_sysvenv pysysvenv"; do
  read -r name runner <<<"$spec"
  printf 'name: %s\nrunner_type: %s\nentry_point: noop.py\n' "$name" "$runner" \
    >"$PACK/actions/$name.yaml"
done
echo "demo-pkg==1.0" >"$PACK/requirements.txt"
"$PY" - "$PACK/wheels" <<'PY'
import base64, hashlib, os, sys, zipfile
files = {
    "demo_pkg/__init__.py": b'VERSION = "1.0"\n',
    "demo_pkg-1.0.dist-info/METADATA":
        b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\nSummary: env_bench wheel\n",
    "demo_pkg-1.0.dist-info/WHEEL":
        b"Wheel-Version: 1.0\nGenerator: env_bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for name, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
record.append("demo_pkg-1.0.dist-info/RECORD,,")
files["demo_pkg-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
with zipfile.ZipFile(os.path.join(sys.argv[1], "demo_pkg-1.0-py3-none-any.whl"), "w") as z:
    for name, data in files.items():
        z.writestr(name, data)
PY
# The venv-style interpreter of "pysysvenv": the layout `venv` makes, minus the environment.
ln -s "$PY" "$PACK/pyhome/bin/python3"
printf 'home = /usr/bin\ninclude-system-site-packages = false\nversion = %s\n' \
  "$("$PY" -c 'import platform; print(platform.python_version())')" >"$PACK/pyhome/pyvenv.cfg"
chmod -R a+rX "$PACKS"

runtime() {  # runtime NAME BINARY
  cat >"$TMP/runtimes/$1.toml" <<EOF
# Same interpreter and env_vars as the built-in python runtime; no [environment].
name = "$1"
description = "env_bench: python without an environment"
[interpreter]
binary = "$2"
args = ["-u"]
[inline]
strategy = "direct"
extension = ".py"
[env_vars]
PYTHONPATH = { value = "{pack_dir}/lib", operation = "prepend", separator = ":" }
EOF
}
runtime pysys "$PY"
runtime pysysvenv /pack/pyhome/bin/python3

CONFIG=$TMP/config.toml
cat >"$CONFIG" <<EOF
packs_base_dir = "$PACKS"
runtime_envs_dir = "$ENVS"
state_dir = "$STATE"
runtimes_dir = "$TMP/runtimes"

[sandbox]
install_network = false

[envs]
install_env = { PIP_NO_INDEX = "1", PIP_FIND_LINKS = "/pack/wheels" }
EOF
PVC=("$PV" --config "$CONFIG")

# hyperfine -N splits commands on whitespace.
[[ $TMP != *[[:space:]]* ]] || die "temp dir with whitespace: $TMP"

# Sanity: set up, then every action must succeed and the env must hold the wheel.
"${PVC[@]}" pack validate "$PACK" >/dev/null || die "pack validate failed"
"${PVC[@]}" env setup envbench || die "env setup failed"
compgen -G "$ENVS/envbench/python/lib/python3*/site-packages/demo_pkg/__init__.py" >/dev/null ||
  die "demo_pkg not installed in the environment"
for action in noop_py noop_sys noop_sysvenv; do
  "${PVC[@]}" run "envbench.$action" || die "run envbench.$action failed"
done
VENV_PY=$ENVS/envbench/python/bin/python3
"$VENV_PY" -u "$PACK/actions/noop.py" || die "$VENV_PY cannot run noop.py on the host"
# The sandboxed interpreters must be what they claim (prefix, and what site did).
probe() {  # probe ACTION: sys.prefix and the site dirs, from inside the sandbox
  cp "$PACK/actions/noop.py" "$TMP/noop.py.bak"
  echo 'import sys; print(sys.executable, sys.prefix, [p for p in sys.path if "packages" in p])' \
    >"$PACK/actions/noop.py"
  "${PVC[@]}" run "envbench.$1" || true
  cp "$TMP/noop.py.bak" "$PACK/actions/noop.py"
}
for action in noop_py noop_sys noop_sysvenv; do echo "  $action: $(probe "$action")"; done

# --- 1. Execution with a ready environment vs none --------------------------------------------
PRIO=()
[[ -n ${NICE:-} ]] && PRIO+=(nice -n "$NICE")
if [[ -n ${CHRT:-} ]]; then
  PRIO+=(chrt -f "$CHRT")
  "${PRIO[@]}" "${PVC[@]}" run envbench.noop_sys >/dev/null ||
    die "packvisor run fails under chrt -f $CHRT (cgroup v1 cpu controller?); use NICE=-20"
fi
echo
echo "== 1. execution: environment ready vs no environment (${RUNS} runs, warmup ${WARMUP}${PRIO:+, ${PRIO[*]}})"
RUN="$PV --config $CONFIG run"
"${PRIO[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/exec.json" \
  -n py-env "$RUN envbench.noop_py" \
  -n pysys "$RUN envbench.noop_sys" \
  -n pysys-venv "$RUN envbench.noop_sysvenv" \
  -n host-sys "$PY -u $PACK/actions/noop.py" \
  -n host-venv "$VENV_PY -u $PACK/actions/noop.py" \
  -n py-env#2 "$RUN envbench.noop_py" \
  -n pysys#2 "$RUN envbench.noop_sys" >"$TMP/exec.txt"

# With PROFILE=1: the supervisor process's own CPU and page faults (perf stat --no-inherit, i.e.
# without the sandbox's processes) for the two no-environment-vs-environment contenders.
if [[ ${PROFILE:-0} == 1 ]] && command -v perf >/dev/null; then
  for action in noop_py noop_sysvenv; do
    for scope in --no-inherit ""; do
      perf stat -r 30 $scope -x, -e task-clock,page-faults "${PVC[@]}" run "envbench.$action" \
        2>&1 >/dev/null | awk -F, -v a="$action" -v s="${scope:-with-children}" \
        '$3 ~ /task-clock|page-faults/ {printf "  perf %-13s %-14s %-12s %s\n", a, s, $3, $1}'
    done
  done | tee "$TMP/perf.txt"
fi

# --- 2. First build vs the manual way ----------------------------------------------------------
echo
echo "== 2. first build: packvisor env setup vs python3 -m venv + pip (${BUILD_RUNS} runs)"
MANUAL=$TMP/manual-venv
hyperfine --runs "$BUILD_RUNS" --export-json "$TMP/build.json" \
  -n packvisor-env-setup \
  --prepare "$PV --config $CONFIG env rm envbench" \
  "$PV --config $CONFIG env setup envbench" \
  -n manual-venv-pip \
  --prepare "rm -rf $MANUAL" \
  "$PY -m venv $MANUAL && $MANUAL/bin/pip install --no-index --find-links $PACK/wheels -r $PACK/requirements.txt" \
  >"$TMP/build.txt" 2>"$TMP/build.err" || { cat "$TMP/build.txt" "$TMP/build.err"; die "part 2 failed"; }
compgen -G "$MANUAL/lib/python3*/site-packages/demo_pkg/__init__.py" >/dev/null ||
  die "demo_pkg not installed in the manual venv"
SIZE_PV=$(du -sh "$ENVS/envbench/python" | cut -f1)
SIZE_MANUAL=$(du -sh "$MANUAL" | cut -f1)
KB_PV=$(du -sk "$ENVS/envbench/python" | cut -f1)
KB_MANUAL=$(du -sk "$MANUAL" | cut -f1)

# --- 3. Concurrent first executions -------------------------------------------------------------
echo
echo "== 3. ${CONC} concurrent first executions from an empty runtime_envs_dir (${ROUNDS} rounds)"
: >"$TMP/concurrent.txt"
for round in $(seq "$ROUNDS"); do
  "${PVC[@]}" env rm envbench >/dev/null 2>&1 || true
  rm -rf "$ENVS"
  [[ ! -e $ENVS ]] || die "could not empty $ENVS"
  dir=$TMP/round$round
  mkdir -p "$dir"
  start=$(date +%s%N)
  pids=()
  for i in $(seq "$CONC"); do
    "$PV" --config "$CONFIG" --log-level info run envbench.noop_py \
      >"$dir/out$i" 2>"$dir/err$i" &
    pids+=($!)
  done
  statuses=()
  for pid in "${pids[@]}"; do
    if wait "$pid"; then statuses+=(0); else statuses+=($?); fi
  done
  end=$(date +%s%N)
  builds=$(cat "$dir"/err* | grep -c 'environment envbench/python: create' || true)
  published=$(cat "$dir"/err* | grep -c 'environment envbench/python: published' || true)
  envs_now=$(find "$ENVS/envbench" -mindepth 1 -maxdepth 1 -type d | wc -l)
  echo "$round $(( (end - start) / 1000000 )) $builds $published $envs_now ${statuses[*]}" \
    >>"$TMP/concurrent.txt"
done

# --- Summary ---------------------------------------------------------------------------------
echo
"$PY" - "$TMP/exec.json" "$TMP/build.json" "$TMP/concurrent.txt" \
  "$SIZE_PV" "$SIZE_MANUAL" "$KB_PV" "$KB_MANUAL" <<'PY'
import json, statistics, sys
exec_json, build_json, conc_txt, size_pv, size_man, kb_pv, kb_man = sys.argv[1:8]
res = {r["command"]: r for r in json.load(open(exec_json))["results"]}
names = [r["command"] for r in json.load(open(exec_json))["results"]]
ms = lambda v: v * 1000
print("1. execution (ms), %d runs each:" % len(res["py-env"]["times"]))
for n in names:
    r = res[n]
    print("  %-11s median %7.3f  mean %7.3f ± %.3f  min %7.3f  cpu %6.2f" % (
        n, ms(r["median"]), ms(r["mean"]), ms(r["stddev"]), ms(r["min"]),
        ms(r["user"] + r["system"])))
med = {n: ms(res[n]["median"]) for n in names}
pooled = lambda a, b: ms(statistics.median(res[a]["times"] + res[b]["times"]))
env_all, sys_all = pooled("py-env", "py-env#2"), pooled("pysys", "pysys#2")
r1 = med["py-env"] / med["pysys"]
r2 = med["py-env#2"] / med["pysys#2"]
rp = env_all / sys_all
rv = med["py-env"] / med["pysys-venv"]
print("  ratio py-env / pysys: first pair %.3f, second pair %.3f, pooled %.3f (%+.2f ms)" % (
    r1, r2, rp, env_all - sys_all))
print("  ratio py-env / pysys-venv (same interpreter start-up): %.3f (%+.2f ms)" % (
    rv, med["py-env"] - med["pysys-venv"]))
print("  host interpreters: venv - system = %+.2f ms" % (med["host-venv"] - med["host-sys"]))
print("  drift: py-env#2 - py-env = %+.2f ms, pysys#2 - pysys = %+.2f ms" % (
    med["py-env#2"] - med["py-env"], med["pysys#2"] - med["pysys"]))
ok = lambda c: "MET" if c else "MISSED"
print("  goal py-env within 5%% of no-env: pooled vs pysys %s (%.3f); vs pysys-venv %s (%.3f)" % (
    ok(rp <= 1.05), rp, ok(rv <= 1.05), rv))

b = {r["command"]: r for r in json.load(open(build_json))["results"]}
print("2. first build (s), %d runs each:" % len(b["packvisor-env-setup"]["times"]))
for n in ("packvisor-env-setup", "manual-venv-pip"):
    r = b[n]
    print("  %-20s median %6.3f  mean %6.3f ± %.3f  min %6.3f  max %6.3f  cpu %6.2f" % (
        n, r["median"], r["mean"], r["stddev"], r["min"], r["max"], r["user"] + r["system"]))
rb = b["packvisor-env-setup"]["median"] / b["manual-venv-pip"]["median"]
print("  ratio packvisor / manual: %.3f   goal <= 0.5: %s" % (rb, ok(rb <= 0.5)))
print("  sizes (du -sh): packvisor env %s (%s KiB), manual venv %s (%s KiB)" % (
    size_pv, kb_pv, size_man, kb_man))

rows = [l.split() for l in open(conc_txt) if l.strip()]
print("3. concurrent first executions (round, wall ms, builds, published, env dirs, exits):")
for row in rows:
    print("  round %s: %6s ms  builds %s  published %s  env dirs %s  exits %s" % (
        row[0], row[1], row[2], row[3], row[4], " ".join(row[5:])))
walls = [int(r[1]) for r in rows]
builds = [int(r[2]) for r in rows]
exits_ok = all(x == "0" for r in rows for x in r[5:])
print("  median wall %d ms (min %d, max %d); builds per round %s; all exits 0: %s" % (
    statistics.median(walls), min(walls), max(walls), builds, exits_ok))
print("  goal 1 build per round: %s" % ok(all(x == 1 for x in builds) and exits_ok))
PY
