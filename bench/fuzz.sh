#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ for SECONDS each, JOBS at a time, and prints per target the
# executions, the coverage libFuzzer reached (cov: edges, ft: features), the corpus size and the
# crashes. Exit status 1 if any target crashed or broke an invariant; its reproducer is kept under
# $BUILD_DIR/fuzz-artifacts/ (replay: $BUILD_DIR/fuzz/fuzz_<target> <file>).
#
#   bench/fuzz.sh SECONDS [TARGET...]     every target when none is named
#   BUILD_DIR=build-fuzz                  configured and built here when missing or stale
#   JOBS=$(nproc)                         targets run in parallel
#   MERGE=1                               fold the new inputs that add coverage into fuzz/corpus/
#   RUNS=N                                stop a target after N executions (SECONDS still caps it)
#   FORK=N                                one target's run in N processes (libFuzzer -fork=N: one
#                                         corpus, one count); for long runs of one slow target
#
# The checked-in corpus is read only: new inputs go to a scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: bench/fuzz.sh SECONDS [TARGET...]}
shift
build_dir=${BUILD_DIR:-build-fuzz}
jobs=${JOBS:-$(nproc)}

if [[ ! -f $build_dir/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPACKVISOR_FUZZ=ON >/dev/null
fi
cmake --build "$build_dir" -j "$(nproc)" --target packvisor_fuzz_targets >/dev/null

targets=("$@")
if ((${#targets[@]} == 0)); then
  for source in fuzz/*_fuzz.cc; do
    name=$(basename "$source" _fuzz.cc)
    targets+=("$name")
  done
fi

scratch=$(mktemp -d /tmp/packvisor-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
artifacts=$build_dir/fuzz-artifacts
mkdir -p "$artifacts"

run_one() {
  local name=$1 binary=$build_dir/fuzz/fuzz_$1 work=$scratch/$1
  mkdir -p "$work/new" "$work/artifacts"
  local status=0
  # -rss_limit_mb: a parser that balloons is a finding too. -timeout: one input, 10 s.
  local runs=()
  [[ -n ${RUNS:-} ]] && runs=(-runs="$RUNS")
  [[ -n ${FORK:-} ]] && runs+=(-fork="$FORK")
  "$binary" -max_total_time="$seconds" "${runs[@]}" -print_final_stats=1 -rss_limit_mb=2048 \
    -timeout=10 -artifact_prefix="$work/artifacts/" "$work/new" "fuzz/corpus/$name" >"$work/log" 2>&1 ||
    status=$?
  echo "$status" >"$work/status"
  if [[ ${MERGE:-0} == 1 && $status == 0 ]]; then
    "$binary" -merge=1 "fuzz/corpus/$name" "$work/new" >>"$work/log" 2>&1 || true
  fi
}

for name in "${targets[@]}"; do
  [[ -x $build_dir/fuzz/fuzz_$name ]] || { echo "bench/fuzz.sh: no target fuzz_$name" >&2; exit 2; }
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  run_one "$name" &
done
wait

failed=0
printf '%-20s %12s %10s %8s %8s %8s  %s\n' target execs exec/s cov ft corpus result
for name in "${targets[@]}"; do
  work=$scratch/$name
  log=$work/log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [[ -z $execs ]]; then # -fork: the parent's last "#N: ... time: Ts" line
    execs=$(sed -n 's/^#\([0-9]*\): .*/\1/p' "$log" | tail -1)
    elapsed=$(sed -n 's/^#[0-9]*: .* time: \([0-9]*\)s .*/\1/p' "$log" | tail -1)
    [[ -n $execs && ${elapsed:-0} -gt 0 ]] && rate=$((execs / elapsed))
  fi
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  result=ok
  if [[ $(cat "$work/status") != 0 ]]; then
    result="CRASH (exit $(cat "$work/status"))"
    failed=1
    for file in "$work"/artifacts/*; do
      [[ -e $file ]] && cp "$file" "$artifacts/$name-$(basename "$file")" &&
        result+=" $artifacts/$name-$(basename "$file")"
    done
    grep -m3 -E 'ERROR: |invariant broken|runtime error' "$log" >&2 || tail -20 "$log" >&2
  fi
  printf '%-20s %12s %10s %8s %8s %8s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "${corpus:-?}" "$result"
done
exit "$failed"
