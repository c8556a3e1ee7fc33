#!/usr/bin/env bash
# The queue worker's goal (issue 13): executions/s of a trivial shell action (hello.noop) end to
# end through RabbitMQ (publish -> worker -> result on the client's reply queue) with 1 worker and
# with 2 workers, against the daemon (`packvisor serve`, POST /v1/executions?wait=true) on the same
# action at the same concurrency, in the same run. Goal: 1 worker at most 20 % below the daemon.
#
#   sudo bench/worker_bench.sh [PACKVISOR_BINARY] [BUILD_DIR]
#
# A private broker (tests/support/rabbitmq-broker.sh, as the tests start it), the daemon and the
# workers are started here under a temp dir and stopped at the end, even on failure. Built here:
# bench/daemon_client.cc (keep-alive HTTP client) and bench/queue_client.c (rabbitmq-c client:
# CONCURRENCY requests in flight, one exclusive reply queue, correlation ids checked).
# Knobs: REQUESTS (1000), WARMUP (50), CONCURRENCY (2: the daemon's server.max_concurrent, each
# worker's worker.max_concurrent and the clients' requests in flight), KEEP=1 keeps the temp dir.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PV_IN=${1:-$SRC_DIR/build/supervisor/packvisor}
die() { echo "worker_bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (packvisor is a root supervisor)"
[[ -x $PV_IN ]] || die "no packvisor binary at $PV_IN"
PV_IN=$(cd "$(dirname "$PV_IN")" && pwd)/$(basename "$PV_IN")
REQUESTS=${REQUESTS:-1000}
WARMUP=${WARMUP:-50}
CONCURRENCY=${CONCURRENCY:-2}
BROKER_SCRIPT=$SRC_DIR/tests/support/rabbitmq-broker.sh
for tool in g++ gcc curl; do command -v "$tool" >/dev/null || die "$tool not found"; done
[[ -f /usr/include/http_parser.h ]] || die "http_parser.h missing (apt-get install libhttp-parser-dev)"
[[ -f /usr/include/amqp.h ]] || die "amqp.h missing (apt-get install librabbitmq-dev)"
PY=/usr/bin/python3

TMP=$(mktemp -d /tmp/packvisor-worker-bench.XXXXXX)
PIDS=()
BROKER_STARTED=0
cleanup() {
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  [[ $BROKER_STARTED == 1 ]] && "$BROKER_SCRIPT" stop "$TMP/broker" >/dev/null 2>&1 || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
cd "$TMP"
PV=$TMP/packvisor
cp "$PV_IN" "$PV"
echo "packvisor: $PV_IN (sha256 $(sha256sum "$PV" | cut -c1-12)); $(nproc) cores;" \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Clients.
g++ -std=c++20 -O2 -Wall -Wextra -o daemon_client "$SRC_DIR/bench/daemon_client.cc" \
  -l:libhttp_parser.a -pthread
gcc -O2 -Wall -Wextra -D_GNU_SOURCE -o queue_client "$SRC_DIR/bench/queue_client.c" \
  -l:librabbitmq.a -lssl -lcrypto

# 2. The broker (vhost t1, made by the script).
BROKER_STARTED=1
"$BROKER_SCRIPT" start "$TMP/broker" >broker-start.log 2>&1 || { cat broker-start.log >&2; die "broker"; }
URL=$(cat "$TMP/broker/url")
PORT=${URL##*:}
echo "broker: $URL"

common_config() {  # state dir name
  cat <<EOC
packs_base_dir = "$SRC_DIR/examples/packs"
runtime_envs_dir = "$TMP/runtime_envs"
state_dir = "$TMP/$1"

[execution]
default_timeout_seconds = 60
EOC
}
"$PV" keygen --private "$TMP/worker.key" --public "$TMP/worker.pub" >/dev/null

# 3. The daemon.
SOCK=$TMP/packvisor.sock
{ common_config state-daemon; cat <<EOC

[server]
socket = "$SOCK"
max_concurrent = $CONCURRENCY
max_queued = 256
EOC
} >daemon.toml
"$PV" --config daemon.toml serve 2>daemon.log &
DAEMON_PID=$!
PIDS+=("$DAEMON_PID")
api() { curl -sS --unix-socket "$SOCK" "$@"; }
for _ in $(seq 200); do
  api http://packvisor/v1/health >/dev/null 2>&1 && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { cat daemon.log >&2; die "the daemon exited"; }
  sleep 0.05
done
"$PV" --config daemon.toml run hello.noop >/dev/null || die "one-shot noop failed"
./daemon_client "$SOCK" POST "/v1/executions?wait=true" '{"action_ref":"hello.noop"}' \
  "$CONCURRENCY" "$REQUESTS" "$WARMUP" >daemon.json
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true

# 4. Workers: 1, then 2 (each its own state_dir).
start_worker() {  # name
  { common_config "state-$1"; cat <<EOC

[worker]
broker_url = "$URL/t1"
key_file = "$TMP/worker.key"
public_key_file = "$TMP/worker.pub"
max_concurrent = $CONCURRENCY
name = "$1"
EOC
  } >"$1.toml"
  "$PV" --config "$1.toml" worker 2>"$1.log" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 600); do
    grep -q consuming "$1.log" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$1.log" >&2; die "worker $1 exited"; }
    sleep 0.05
  done
  cat "$1.log" >&2
  die "worker $1 does not consume"
}
queue_run() {
  ./queue_client 127.0.0.1 "$PORT" t1 hello.noop shell "$REQUESTS" "$1" "$WARMUP"
}
start_worker w1
queue_run "$CONCURRENCY" >worker1.json
start_worker w2
queue_run $((2 * CONCURRENCY)) >worker2.json

# 5. Summary.
$PY - "$CONCURRENCY" <<'PY'
import json, sys
c = int(sys.argv[1])
d = json.load(open("daemon.json"))
w1 = json.load(open("worker1.json"))
w2 = json.load(open("worker2.json"))
print("\nhello.noop executions/s, %d requests each (errors/failed in brackets):" % w1["requests"])
print("  daemon   (POST /v1/executions?wait=true, %d clients)  %7.1f/s  [%s]" % (
    c, d["per_s"], d["errors"]))
print("  1 worker (via RabbitMQ, %d in flight)                 %7.1f/s  [%s]" % (
    c, w1["per_second"], w1["failed"]))
print("  2 workers (via RabbitMQ, %d in flight)                %7.1f/s  [%s]" % (
    2 * c, w2["per_second"], w2["failed"]))
ratio = w1["per_second"] / d["per_s"]
print("\ngoal: 1 worker >= 80 %% of the daemon: %.1f %% -> %s" % (
    ratio * 100, "met" if ratio >= 0.8 else "NOT met"))
PY
