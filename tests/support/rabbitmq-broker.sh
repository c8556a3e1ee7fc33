#!/bin/bash
# A private RabbitMQ broker for the queue tests (tests/support/broker_fixture.h, the ctest fixture
# `rabbitmq` in tests/CMakeLists.txt).
#
#   rabbitmq-broker.sh start DIR [--tls]
#                                  starts a broker whose whole state lives under DIR; writes
#                                  DIR/url (amqp://guest:guest@127.0.0.1:PORT) and DIR/ctl.env
#                                  (KEY=VALUE lines: the environment rabbitmqctl needs). With
#                                  --tls (on the first start of DIR) it also listens for amqps
#                                  with a certificate for "localhost" only, signed by a CA of its
#                                  own (DIR/tls/ca.pem), and requires a client certificate
#                                  (DIR/tls/client.pem, client.key); DIR/tls_url is
#                                  amqps://guest:guest@localhost:PORT.
#   rabbitmq-broker.sh stop DIR    stops it (rabbitmqctl stop, SIGKILL of its process group after
#                                  a deadline) and its epmd; leaves no process behind.
#
# Debian's rabbitmq-server 3.10 runs AS ROOT through /usr/lib/rabbitmq/bin/rabbitmq-server (the
# /usr/sbin wrapper switches to the rabbitmq user and the system's config). Everything listens on
# 127.0.0.1 only, on free ports: AMQP, Erlang distribution, and an epmd of our own (ERL_EPMD_PORT)
# started here as a child so that stop can kill it: the system's epmd is never used nor killed.
# The node name is unique (pvt-<random>@localhost). The definitions (defs.json) create the user
# guest/guest (administrator) and the vhosts t1..t64 with full permissions: a test takes a vhost
# of its own (TakeVhostUrl) instead of a broker of its own.
#
# A second `start` of a stopped DIR reuses its ports, node name and data (durable queues and their
# messages survive): PrivateBroker::Restart() relies on it.
set -euo pipefail

readonly RABBITMQ_BIN=/usr/lib/rabbitmq/bin
readonly START_TIMEOUT_SECONDS=90
readonly STOP_TIMEOUT_SECONDS=30
readonly VHOSTS=64

die() {
  echo "rabbitmq-broker.sh: $*" >&2
  exit 1
}

# Prints a TCP port nobody listens on in [20000, 45000) (the CLI's distribution ports are the
# distribution port + 10000..10010, which must stay below 65536).
free_port() {
  /usr/bin/python3 - "$@" <<'EOF'
import random, socket, sys
taken = {int(p) for p in sys.argv[1:]}
for _ in range(200):
    port = random.randrange(20000, 45000)
    if port in taken:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
sys.exit("no free port")
EOF
}

port_answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

alive() {
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null
}

# $1 and its descendants. The broker's helpers (erl_child_setup, inet_gethost) make sessions of
# their own, so the broker's process group alone does not hold them all.
process_tree() {
  ps -eo pid=,ppid=,stat= | awk -v root="$1" '
    $3 !~ /^Z/ { parent[$1] = $2 }
    END {
      if (!(root in parent)) exit
      print root
      seen[root] = 1
      do {
        grown = 0
        for (p in parent) if (!(p in seen) && (parent[p] in seen)) {
          seen[p] = 1; print p; grown = 1
        }
      } while (grown)
    }'
}

# Kills $1 and every descendant without letting one escape: SIGSTOP until the tree no longer
# grows (a stopped process cannot fork), then SIGKILL, then waits until they are gone.
kill_tree() {
  local pids="" now
  while :; do
    now=$(process_tree "$1" | sort -n | tr '\n' ' ')
    [[ "$now" == "$pids" ]] && break
    pids=$now
    # shellcheck disable=SC2086
    kill -STOP $pids 2>/dev/null || true
  done
  [[ -n "$pids" ]] || return 0
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  local pid
  while [[ -n "$(process_tree "$1")" ]]; do sleep 0.05; done
  for pid in $pids; do
    while alive "$pid" && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do sleep 0.05; done
  done
}

# A CA of the test's own, a server certificate for DNS:localhost (not 127.0.0.1: hostname checks
# have something to refuse) and a client certificate. P-256 keys: quick to make.
make_certificates() {
  local tls=$1
  mkdir -p "$tls"
  local key_options=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${key_options[@]}" -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 2 \
    -subj /CN=packvisor-test-ca 2>/dev/null
  local name usage
  for name in server client; do
    if [[ $name == server ]]; then usage="subjectAltName=DNS:localhost
extendedKeyUsage=serverAuth"; else usage="extendedKeyUsage=clientAuth"; fi
    openssl req "${key_options[@]}" -keyout "$tls/$name.key" -out "$tls/$name.csr" \
      -subj "/CN=packvisor-test-$name" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\n%s\n' "$usage" >"$tls/$name.ext"
    openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -out "$tls/$name.pem" -days 2 -extfile "$tls/$name.ext" 2>/dev/null
  done
  chmod 0600 "$tls"/*.key
}

write_config() {
  local dir=$1 tls=$2
  mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
  chmod 0700 "$dir/home"
  local amqp_port dist_port epmd_port
  amqp_port=$(free_port)
  dist_port=$(free_port "$amqp_port")
  epmd_port=$(free_port "$amqp_port" "$dist_port")
  local node
  node="pvt-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')@localhost"
  od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F >"$dir/home/.erlang.cookie"
  chmod 0400 "$dir/home/.erlang.cookie"

  {
    echo "listeners.tcp.1 = 127.0.0.1:$amqp_port"
    echo "loopback_users = none"
    echo "load_definitions = $dir/defs.json"
    echo "log.file.level = info"
    echo "log.console = false"
  } >"$dir/rabbitmq.conf"
  if [[ -n "$tls" ]]; then
    local tls_port
    tls_port=$(free_port "$amqp_port" "$dist_port" "$epmd_port")
    make_certificates "$dir/tls"
    {
      echo "listeners.ssl.1 = 127.0.0.1:$tls_port"
      echo "ssl_options.cacertfile = $dir/tls/ca.pem"
      echo "ssl_options.certfile = $dir/tls/server.pem"
      echo "ssl_options.keyfile = $dir/tls/server.key"
      echo "ssl_options.verify = verify_peer"
      echo "ssl_options.fail_if_no_peer_cert = true"
    } >>"$dir/rabbitmq.conf"
    echo "$tls_port" >"$dir/tls_port"
  fi
  echo "[]." >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"

  {
    echo '{"users": [{"name": "guest", "password": "guest", "tags": "administrator"}],'
    echo ' "vhosts": ['
    local i sep=""
    for ((i = 1; i <= VHOSTS; i++)); do
      printf '%s{"name": "t%d"}' "$sep" "$i"
      sep=", "
    done
    echo '],'
    echo ' "permissions": ['
    sep=""
    for ((i = 1; i <= VHOSTS; i++)); do
      printf '%s{"user": "guest", "vhost": "t%d", "configure": ".*", "write": ".*", "read": ".*"}' \
        "$sep" "$i"
      sep=", "
    done
    echo ']}'
  } >"$dir/defs.json"

  # The environment of the server and of rabbitmqctl alike. Values have no spaces (checked on DIR).
  {
    echo "HOME=$dir/home"
    echo "RABBITMQ_NODENAME=$node"
    echo "RABBITMQ_USE_LONGNAME=false"
    echo "RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf"
    echo "RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf"
    echo "RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config"
    echo "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins"
    echo "RABBITMQ_MNESIA_BASE=$dir/mnesia"
    echo "RABBITMQ_LOG_BASE=$dir/log"
    echo "RABBITMQ_PID_FILE=$dir/rabbitmq.pid"
    echo "RABBITMQ_DIST_PORT=$dist_port"
    echo "RABBITMQ_CTL_DIST_PORT_MIN=$((dist_port + 10000))"
    echo "RABBITMQ_CTL_DIST_PORT_MAX=$((dist_port + 10010))"
    echo "ERL_EPMD_PORT=$epmd_port"
    echo "ERL_EPMD_ADDRESS=127.0.0.1"
  } >"$dir/ctl.env"
  echo "$amqp_port" >"$dir/amqp_port"
  echo "$epmd_port" >"$dir/epmd_port"
}

start() {
  local dir=$1 tls=${2:-}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  [[ "$dir" =~ ^[A-Za-z0-9/._-]+$ ]] || die "DIR must be a plain path (letters, digits, /._-): $dir"
  if [[ -f "$dir/server.pid" ]] && alive "$(cat "$dir/server.pid")"; then
    die "a broker already runs in $dir"
  fi
  [[ -f "$dir/ctl.env" ]] || write_config "$dir" "$tls"
  rm -f "$dir/url" "$dir/tls_url" "$dir/server.pid" "$dir/epmd.pid"

  local amqp_port epmd_port
  amqp_port=$(cat "$dir/amqp_port")
  epmd_port=$(cat "$dir/epmd_port")
  set -a
  # shellcheck disable=SC1091
  . "$dir/ctl.env"
  set +a

  # Our own epmd, in its own session (it outlives this script), killed by `stop`.
  setsid epmd -port "$epmd_port" -address 127.0.0.1 </dev/null >"$dir/log/epmd.out" 2>&1 &
  echo $! >"$dir/epmd.pid"
  local waited=0
  until port_answers "$epmd_port"; do
    alive "$(cat "$dir/epmd.pid")" || die "epmd -port $epmd_port exited: $(cat "$dir/log/epmd.out")"
    ((waited++ < 100)) || die "epmd does not answer on 127.0.0.1:$epmd_port"
    sleep 0.1
  done

  # The distribution listens on loopback only; +sbwt none: 2 shared cores, no busy-waiting
  # schedulers; +S 2:2 caps the scheduler threads.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} \
+S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none"
  setsid "$RABBITMQ_BIN/rabbitmq-server" </dev/null >>"$dir/log/server.out" 2>&1 &
  local server_pid=$!
  echo "$server_pid" >"$dir/server.pid"

  local tls_port=$amqp_port
  [[ -f "$dir/tls_port" ]] && tls_port=$(cat "$dir/tls_port")
  local deadline=$((SECONDS + START_TIMEOUT_SECONDS))
  until port_answers "$amqp_port" && port_answers "$tls_port"; do
    if ! alive "$server_pid" || ((SECONDS >= deadline)); then
      echo "rabbitmq-broker.sh: the broker in $dir did not answer on 127.0.0.1:$amqp_port" >&2
      tail -n 40 "$dir/log/server.out" "$dir"/log/*.log >&2 2>/dev/null || true
      stop "$dir" || true
      exit 1
    fi
    sleep 0.2
  done
  if [[ -f "$dir/tls_port" ]]; then
    echo "amqps://guest:guest@localhost:$tls_port" >"$dir/tls_url"
  fi
  echo "amqp://guest:guest@127.0.0.1:$amqp_port" >"$dir/url"
}

stop() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir=$(cd "$dir" && pwd -P)
  local server_pid="" epmd_pid=""
  [[ -f "$dir/server.pid" ]] && server_pid=$(cat "$dir/server.pid")
  [[ -f "$dir/epmd.pid" ]] && epmd_pid=$(cat "$dir/epmd.pid")
  rm -f "$dir/url" "$dir/tls_url"

  if alive "$server_pid" && [[ -f "$dir/ctl.env" ]]; then
    (
      set -a
      # shellcheck disable=SC1091
      . "$dir/ctl.env"
      set +a
      timeout "$STOP_TIMEOUT_SECONDS" "$RABBITMQ_BIN/rabbitmqctl" stop >/dev/null 2>&1
    ) || true
  fi
  if [[ -n "$server_pid" ]]; then
    local deadline=$((SECONDS + STOP_TIMEOUT_SECONDS))
    while [[ -n "$(process_tree "$server_pid")" ]] && ((SECONDS < deadline)); do
      sleep 0.2
    done
    kill_tree "$server_pid"
  fi
  if alive "$epmd_pid"; then
    kill -KILL "$epmd_pid" 2>/dev/null || true
    while alive "$epmd_pid"; do sleep 0.1; done
  fi
  rm -f "$dir/server.pid" "$dir/epmd.pid"
}

case "${1:-}" in
  start)
    [[ $# -eq 2 || ($# -eq 3 && "$3" == --tls) ]] || die "usage: $0 start DIR [--tls]"
    start "$2" "${3:-}"
    ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 start|stop DIR" ;;
esac
