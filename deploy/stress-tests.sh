#!/usr/bin/env bash
# Runs the whole Vigil test suite RUNS times (default 5) while stress-ng keeps every CPU busy,
# then prints each test that failed with the number of runs it failed in. Exit status 1 when
# any test failed, 0 otherwise. Builds first, as deploy/test.sh does. Run as root on Debian 12.
#   ./deploy/stress-tests.sh            5 runs
#   ./deploy/stress-tests.sh 10 -R Tpm  10 runs of the tests matching Tpm (extra args go to ctest)
# Each run's full ctest output is kept in <build>/stress/run-N.log; a failed test's log there
# names its kept temporary directory. $VIGIL_STRESS_CPUS sets the stress-ng CPU workers
# (default: one per CPU).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=5
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  runs=$1
  shift
fi
if ((runs < 1)); then
  echo "stress-tests.sh: RUNS must be at least 1" >&2
  exit 2
fi
"$root/deploy/test.sh" --build-only
build=${VIGIL_BUILD_DIR:-$root/build}
out=$build/stress
rm -rf "$out"
mkdir -p "$out"

stress-ng --cpu "${VIGIL_STRESS_CPUS:-$(nproc)}" --timeout 86400 --quiet &
stress_pid=$!
trap 'kill "$stress_pid" 2>/dev/null; wait "$stress_pid" 2>/dev/null || true' EXIT

failed_list=$build/Testing/Temporary/LastTestsFailed.log
for ((run = 1; run <= runs; run++)); do
  rm -f "$failed_list"
  status=0
  (cd "$build" && ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@") \
    >"$out/run-$run.log" 2>&1 || status=$?
  # ctest lists the failed tests of its last run as "<number>:<name>" lines.
  if [[ -f $failed_list ]]; then
    cut -d: -f2- "$failed_list" >>"$out/failures.txt"
  elif ((status != 0)); then
    echo "(ctest itself, exit status $status: see run-$run.log)" >>"$out/failures.txt"
  fi
  summary=$(grep -E '^[0-9]+% tests passed' "$out/run-$run.log" || echo "no summary")
  echo "stress-tests: run $run/$runs: $summary"
done

if [[ ! -s $out/failures.txt ]]; then
  echo "stress-tests: no test failed in $runs run(s) under load"
  exit 0
fi
echo "stress-tests: failures in $runs run(s) under load (runs failed, test); logs in $out:"
sort "$out/failures.txt" | uniq -c | sort -rn
exit 1
