#!/usr/bin/env bash
# The daemon's goals (issue 12), all measured in one run on one machine:
#   1. request -> result of a raw /bin/true in the full sandbox through the daemon (root-only
#      POST /v1/exec?wait=true), concurrency 1, keep-alive client: p50 <= 1.5 ms, p99 <= 4 ms,
#      and the ratio to one-shot bwrap+seccomp of the same run;
#   2. the demo's shell action (hello.greet) through the daemon vs one-shot `packvisor run`: <= 0.5x;
#   3. executions/s of a trivial action (hello.noop), 2 clients, vs one-shot bwrap+seccomp
#      launches/s with 2 in parallel: >= 2x;
#   4. the daemon's RSS with 8 executions running: < 32 MiB.
# It also prints how many of the exec launches ran in a prepared sandbox (warm pool hits, from
# /metrics' packvisor_warm_pool_claims_total).
#
#   sudo bench/daemon_bench.sh [PACKVISOR_BINARY] [BUILD_DIR]
#
# The daemon is started here (its own config, socket, state and envs under a temp dir) and stopped
# at the end, even on failure. Nothing of packvisor is built: only bench/make_bpf.cc,
# bench/fd_exec.c and bench/daemon_client.cc (the keep-alive client, on Debian's http-parser).
# Knobs: REQUESTS (2000 per client-run), WARMUP (50), RUNS (hyperfine, 200), CHRT=N (SCHED_FIFO
# for every timed command, the daemon included), WARM (server.warm_sandboxes, default 2),
# GAP_MS (50: the pause of the idle-gaps run), KEEP=1 keeps the temp dir.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PV_IN=${1:-$SRC_DIR/build/supervisor/packvisor}
die() { echo "daemon_bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (packvisor is a root supervisor)"
[[ -x $PV_IN ]] || die "no packvisor binary at $PV_IN"
PV_IN=$(cd "$(dirname "$PV_IN")" && pwd)/$(basename "$PV_IN")
BUILD_DIR=$(cd "${2:-$(dirname "$PV_IN")/..}" && pwd)
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-50}
RUNS=${RUNS:-200}
WARM=${WARM:-2}
LIB=$BUILD_DIR/sandbox/libpackvisor_sandbox.a
[[ -f $LIB ]] || die "no sandbox library at $LIB (pass the build dir as \$2)"
for tool in hyperfine bwrap g++ gcc curl pkg-config; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -f /usr/include/http_parser.h ]] || die "http_parser.h missing (apt-get install libhttp-parser-dev)"
BWRAP=$(command -v bwrap)
PY=/usr/bin/python3

TMP=$(mktemp -d /tmp/packvisor-daemon-bench.XXXXXX)
DAEMON_PID=
cleanup() {
  if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
cd "$TMP"
PV=$TMP/packvisor
cp "$PV_IN" "$PV"
echo "packvisor: $PV_IN (sha256 $(sha256sum "$PV" | cut -c1-12)); $(nproc) cores;" \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Helpers.
g++ -std=c++20 -O2 -I"$SRC_DIR" -o make_bpf "$SRC_DIR/bench/make_bpf.cc" "$LIB" \
  $(pkg-config --libs libseccomp libcap) -pthread
gcc -O2 -static -o fd_exec "$SRC_DIR/bench/fd_exec.c" 2>/dev/null ||
  gcc -O2 -o fd_exec "$SRC_DIR/bench/fd_exec.c"
g++ -std=c++20 -O2 -Wall -Wextra -o daemon_client "$SRC_DIR/bench/daemon_client.cc" \
  -l:libhttp_parser.a -pthread
echo "seccomp filter: $(./make_bpf policy.bpf) -> policy.bpf"
BWRAP_ARGS="--unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/lib /lib \
--symlink usr/lib64 /lib64 --symlink usr/bin /bin --proc /proc --dev /dev --tmpfs /tmp"

# 2. The daemon: the demo's packs, everything else under $TMP.
SOCK=$TMP/packvisor.sock
cat >config.toml <<EOF
packs_base_dir = "$SRC_DIR/examples/packs"
runtime_envs_dir = "$TMP/runtime_envs"
state_dir = "$TMP/state"

[execution]
default_timeout_seconds = 60

[server]
socket = "$SOCK"
max_concurrent = 8
max_queued = 256
warm_sandboxes = $WARM
EOF
PRIO=()
[[ -n ${CHRT:-} ]] && PRIO=(chrt -f "$CHRT")
"${PRIO[@]}" "$PV" --config config.toml serve 2>daemon.log &
DAEMON_PID=$!
api() { curl -sS --unix-socket "$SOCK" "$@"; }
for _ in $(seq 200); do
  api http://packvisor/v1/health >/dev/null 2>&1 && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { cat daemon.log >&2; die "the daemon exited"; }
  sleep 0.05
done
api http://packvisor/v1/health >/dev/null || die "the daemon does not answer on $SOCK"

# Sanity: every contender must succeed before it is timed.
"$BWRAP" $BWRAP_ARGS /bin/true || die "bwrap cannot run /bin/true"
./fd_exec 9 policy.bpf "$BWRAP" $BWRAP_ARGS --seccomp 9 /bin/true || die "bwrap --seccomp failed"
"$PV" --config config.toml run hello.greet --param name=Ada >/dev/null || die "one-shot run failed"
"$PV" --config config.toml run hello.noop >/dev/null || die "one-shot noop failed"

# 3. One-shot contenders (hyperfine, one invocation).
"${PRIO[@]}" hyperfine -N --warmup 20 --runs "$RUNS" --export-json oneshot.json \
  -n true "/bin/true" \
  -n fd_exec-true "./fd_exec 9 policy.bpf /bin/true" \
  -n bwrap+seccomp "./fd_exec 9 policy.bpf $BWRAP $BWRAP_ARGS --seccomp 9 /bin/true" \
  -n exec-oneshot "$PV --config config.toml exec -- /bin/true" \
  -n greet-oneshot "$PV --config config.toml run hello.greet --param name=Ada" \
  -n greet-client "$PV --config config.toml run --server=$SOCK hello.greet --param name=Ada" \
  >/dev/null

# 4. Through the daemon, keep-alive client.
client() { "${PRIO[@]}" ./daemon_client "$SOCK" POST "$@"; }
# The warm pool's hits and misses so far (/metrics), as "HITS MISSES".
claims() {
  api http://packvisor/metrics | awk -F'[ }]' '/^packvisor_warm_pool_claims_total\{result="hit"/ {h=$NF}
    /^packvisor_warm_pool_claims_total\{result="miss"/ {m=$NF} END {print h+0, m+0}'
}
claims >claims_0.txt
client "/v1/exec?wait=true" '{"argv":["/bin/true"]}' 1 "$REQUESTS" "$WARMUP" >exec_c1.json
claims >claims_1.txt
# The same with a pause after each request (GAP_MS, default 50): a request that finds the daemon
# idle and its pool refilled, which is what the pool is for; back-to-back requests drain it.
client "/v1/exec?wait=true" '{"argv":["/bin/true"]}' 1 "$((REQUESTS / 4))" "$WARMUP" \
  "${GAP_MS:-50}" >exec_c1_gap.json
claims >claims_2.txt
client "/v1/executions?wait=true" '{"action_ref":"hello.greet","parameters":{"name":"Ada"}}' \
  1 "$REQUESTS" "$WARMUP" >greet_c1.json
client "/v1/executions?wait=true" '{"action_ref":"hello.noop"}' 2 "$REQUESTS" "$WARMUP" \
  >noop_c2.json

# One-shot bwrap+seccomp launches per second, 2 in parallel.
start=$EPOCHREALTIME
seq "$REQUESTS" | "${PRIO[@]}" xargs -P2 -n1 sh -c \
  "exec ./fd_exec 9 policy.bpf $BWRAP $BWRAP_ARGS --seccomp 9 /bin/true" _
end=$EPOCHREALTIME
echo "{\"launches\": $REQUESTS, \"start\": $start, \"end\": $end}" >bwrap_c2.json

# 5. The daemon's RSS with 8 executions running (sleep 3 each).
for _ in $(seq 8); do
  api -o /dev/null -X POST -d '{"argv":["/bin/sleep","3"]}' http://packvisor/v1/exec
done
running=0
for _ in $(seq 100); do
  running=$(api http://packvisor/v1/health | $PY -c 'import json,sys; print(json.load(sys.stdin)["running"])')
  [[ $running -ge 8 ]] && break
  sleep 0.05
done
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
others=$(ps -o pid=,rss=,args= --ppid "$DAEMON_PID" | grep -v packvisor-init || true)
echo "{\"running\": $running, \"daemon_rss_kb\": $rss_kb}" >rss.json
echo "daemon's own children that are not sandboxes (pid rss_kb args):"
echo "${others:-  none}"
sleep 3.5

# 6. Summary.
$PY - <<'PY'
import json
one = {r["command"]: r for r in json.load(open("oneshot.json"))["results"]}
med = {k: v["median"] * 1000 for k, v in one.items()}
wrapper = max(med["fd_exec-true"] - med["true"], 0.0)
bwrap = med["bwrap+seccomp"] - wrapper
e1, e1g, g1, n2 = (json.load(open(f)) for f in (
    "exec_c1.json", "exec_c1_gap.json", "greet_c1.json", "noop_c2.json"))
b2 = json.load(open("bwrap_c2.json"))
rss = json.load(open("rss.json"))
bwrap_per_s = b2["launches"] / (b2["end"] - b2["start"])
print("\none-shot medians (ms): bwrap+seccomp %.3f (%.3f without fd_exec's %.3f), packvisor exec "
      "%.3f, packvisor run hello.greet %.3f, run --server hello.greet %.3f" % (
          med["bwrap+seccomp"], bwrap, wrapper, med["exec-oneshot"], med["greet-oneshot"],
          med["greet-client"]))
for name, r in (("exec /bin/true, 1 client", e1), ("exec /bin/true, idle gaps", e1g),
                ("hello.greet, 1 client", g1),
                ("hello.noop, 2 clients", n2)):
    print("daemon %-26s p50 %.3f  p90 %.3f  p99 %.3f  mean %.3f ms  %.0f/s  errors %d" % (
        name, r["p50_ms"], r["p90_ms"], r["p99_ms"], r["mean_ms"], r["per_s"], r["errors"]))
print("one-shot bwrap+seccomp, 2 in parallel: %.0f launches/s" % bwrap_per_s)
c0, c1, c2 = ([int(x) for x in open("claims_%d.txt" % i).read().split()] for i in range(3))
print("warm pool claims (hits/misses, warm-up included): exec back to back %d/%d, idle gaps %d/%d"
      % (c1[0] - c0[0], c1[1] - c0[1], c2[0] - c1[0], c2[1] - c1[1]))
rows = [
    ("exec /bin/true p50 <= 1.5 ms", "%.3f ms (%.2fx bwrap+seccomp)" % (e1["p50_ms"], e1["p50_ms"] / bwrap),
     e1["p50_ms"] <= 1.5),
    ("exec /bin/true p99 <= 4 ms", "%.3f ms" % e1["p99_ms"], e1["p99_ms"] <= 4.0),
    ("hello.greet daemon / one-shot <= 0.5", "%.3f" % (g1["p50_ms"] / med["greet-oneshot"]),
     g1["p50_ms"] / med["greet-oneshot"] <= 0.5),
    ("noop/s (2 clients) >= 2x bwrap launches/s", "%.2fx (%.0f vs %.0f/s)" % (
        n2["per_s"] / bwrap_per_s, n2["per_s"], bwrap_per_s), n2["per_s"] >= 2 * bwrap_per_s),
    ("daemon RSS, 8 running < 32 MiB", "%.2f MiB (%d running)" % (rss["daemon_rss_kb"] / 1024, rss["running"]),
     rss["daemon_rss_kb"] < 32 * 1024 and rss["running"] >= 8),
]
print("\n| goal | measured | met? |\n|---|---|---|")
for goal, value, ok in rows:
    print("| %s | %s | %s |" % (goal, value, "yes" if ok else "**no**"))
errors = e1["errors"] + e1g["errors"] + g1["errors"] + n2["errors"]
if errors:
    raise SystemExit("%d requests failed" % errors)
PY
echo "raw data: $TMP (KEEP=1 keeps it)"
