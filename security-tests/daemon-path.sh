#!/usr/bin/env bash
# ctest fixture of the security suite's daemon-path pass (security-tests/CMakeLists.txt):
#   daemon-path.sh start DIR PACKVISOR   starts `PACKVISOR serve --socket DIR/packvisor.sock`
#                                        (built-in configuration, as the one-shot pass uses),
#                                        waits until it answers /v1/health
#   daemon-path.sh stop DIR              SIGTERM, waits for a drained exit 0, and fails if the
#                                        daemon did not drain and exit cleanly
set -euo pipefail
action=$1 dir=$2
socket=$dir/packvisor.sock
case $action in
  start)
    packvisor=$3
    rm -rf "$dir" && mkdir -p "$dir"
    setsid "$packvisor" serve --socket "$socket" >"$dir/daemon.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 400); do
      if curl -sf --unix-socket "$socket" http://packvisor/v1/health >/dev/null 2>&1; then
        echo "daemon $(cat "$dir/pid") serving on $socket"
        exit 0
      fi
      kill -0 "$(cat "$dir/pid")" 2>/dev/null || { cat "$dir/daemon.log" >&2; exit 1; }
      sleep 0.05
    done
    echo "the daemon did not answer on $socket within 20 s" >&2
    cat "$dir/daemon.log" >&2
    exit 1
    ;;
  stop)
    pid=$(cat "$dir/pid")
    kill -TERM "$pid"
    # Not our child (setsid in another ctest process): wait for it to go.
    for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "the daemon did not exit within 60 s of SIGTERM" >&2
      kill -KILL "$pid"
      exit 1
    fi
    tail -n 5 "$dir/daemon.log"
    grep -q "drained; exiting" "$dir/daemon.log" || {
      echo "the daemon did not drain and exit cleanly" >&2
      exit 1
    }
    ;;
  *)
    echo "usage: daemon-path.sh start DIR PACKVISOR | stop DIR" >&2
    exit 2
    ;;
esac
