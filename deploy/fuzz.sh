#!/usr/bin/env bash
# Builds every libFuzzer harness in tests/fuzz/ with clang (-DVIGIL_FUZZ=ON: libFuzzer, ASan
# and UBSan, UBSan findings fatal) in a separate build directory, then runs each one in turn
# for SECONDS (default 60) on a scratch copy of its seed corpus. Prints, per target, the
# executions, the seconds, libFuzzer's final coverage (cov: edges, ft: features) and the
# result. Exits non-zero when any target crashes, leaks, times out or fails to build; the
# input that did it is kept and its path printed. See docs/fuzzing.md.
#
# Usage: deploy/fuzz.sh [SECONDS] [TARGET...]      (TARGET: e.g. procfs or procfs_fuzz)
# Environment:
#   FUZZ_BUILD_DIR  clang build directory (default: build-fuzz in the source tree)
#   FUZZ_WORK_DIR   scratch directory for corpora, logs and crash inputs
#                   (default: a new directory under ${TMPDIR:-/tmp})
#   FUZZ_RUNS       also stop a target after this many executions (default: time only)
#   FUZZ_JOBS       parallel compile jobs (default: 2)
#   FUZZ_NICE       nice level of the build and the runs (default: 10)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default: 10;
#                   raise it on a machine busy with other work, where a fast input can
#                   wait that long for a CPU)
#   ASAN_OPTIONS    passed to the targets as given (e.g. quarantine_size_mb=16 when a target
#                   slows down as its corpus grows; see docs/fuzzing.md)
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi

seconds=60
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
if [[ "$seconds" -le 0 ]]; then
  echo "fuzz.sh: SECONDS must be positive" >&2
  exit 2
fi

src=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
jobs=${FUZZ_JOBS:-2}
nice_level=${FUZZ_NICE:-10}
work=${FUZZ_WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/vigil-fuzz.XXXXXX")}
mkdir -p "$work"

for tool in clang clang++ cmake ninja; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (deploy/setup.sh)" >&2; exit 2; }
done

# Targets: every tests/fuzz/*_fuzz.cc, or the ones named.
all=()
for f in "$src"/tests/fuzz/*_fuzz.cc; do
  all+=("$(basename "$f" .cc)")
done
targets=()
if [[ $# -gt 0 ]]; then
  for t in "$@"; do
    t=${t%_fuzz}_fuzz
    if [[ ! -f "$src/tests/fuzz/$t.cc" ]]; then
      echo "fuzz.sh: no harness tests/fuzz/$t.cc (have: ${all[*]})" >&2
      exit 2
    fi
    targets+=("$t")
  done
else
  targets=("${all[@]}")
fi

echo "== configure $build"
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVIGIL_FUZZ=ON >"$work/configure.log" 2>&1 || {
  tail -n 30 "$work/configure.log" >&2
  echo "fuzz.sh: configure failed (log: $work/configure.log)" >&2
  exit 1
}
echo "== build ${targets[*]}"
nice -n "$nice_level" cmake --build "$build" --target "${targets[@]}" -j "$jobs" \
  >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log" >&2
  echo "fuzz.sh: build failed (log: $work/build.log)" >&2
  exit 1
}

# The seed corpus of a target: corpus/<name>, else corpus/<first word of name>.
corpus_of() {
  local name=${1%_fuzz}
  if [[ -d "$src/tests/fuzz/corpus/$name" ]]; then
    echo "$src/tests/fuzz/corpus/$name"
  else
    echo "$src/tests/fuzz/corpus/${name%%_*}"
  fi
}

failed=0
summary=()
for t in "${targets[@]}"; do
  dir="$work/${t%_fuzz}"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -r "$(corpus_of "$t")/." "$dir/corpus/"
  log="$dir/fuzz.log"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048
    -artifact_prefix="$dir/artifacts/")
  [[ -n "${FUZZ_RUNS:-}" ]] && args+=(-runs="$FUZZ_RUNS")
  echo "== $t: ${seconds}s (log: $log)"
  start=$(date +%s.%N)
  rc=0
  (cd "$dir" && nice -n "$nice_level" "$build/tests/fuzz/$t" "${args[@]}" "$dir/corpus") \
    >"$log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  elapsed=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", e - s }')
  result=ok
  if [[ $rc -ne 0 ]]; then
    failed=1
    result="FAILED (exit $rc)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error:|Test unit written to|artifact_prefix)' \
      "$log" | head -n 20 || true
    for a in "$dir"/artifacts/*; do
      [[ -e "$a" ]] && echo "   crash input: $a"
    done
  fi
  summary+=("$(printf '%-22s %12s %8s %8s %8s  %s' "$t" "${execs:-?}" "$elapsed" "${cov:-?}" \
    "${ft:-?}" "$result")")
done

echo
printf '%-22s %12s %8s %8s %8s  %s\n' target executions seconds cov ft result
printf '%s\n' "${summary[@]}"
echo "work directory: $work"
exit "$failed"
