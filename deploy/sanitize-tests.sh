#!/usr/bin/env bash
# Builds the unit tests (every tests/<dir>/*_test.cc outside tests/integration, the fuzz
# corpus replays, and the programs the tests start) with AddressSanitizer and
# UndefinedBehaviorSanitizer (-DVIGIL_SANITIZE=address,undefined, every finding fatal) in a
# separate build directory, and runs them. A memory error, leak or undefined behaviour fails
# the test that hit it; the sanitizer's report is in that test's output
# (<build>/Testing/Temporary/LastTest.log). --all builds and runs the integration tests too.
#
# Not a CI step: the instrumented build is a second full build of the tree (about half an
# hour of CPU on two cores), more than the CI budget leaves. Run it before a release and after
# changes to parsers or memory handling. See docs/fuzzing.md.
#
# Usage: deploy/sanitize-tests.sh [--all] [CTEST_ARGS...]   (e.g. -R Quote to run some tests)
# Environment:
#   SANITIZE_BUILD_DIR  build directory (default: build-sanitize in the source tree)
#   SANITIZE_JOBS       parallel compile jobs and tests (default: 2)
#   SANITIZE_NICE       nice level of the build (default: 10)
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
fi
all=0
if [[ "${1:-}" == "--all" ]]; then
  all=1
  shift
fi

src=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-$src/build-sanitize}
jobs=${SANITIZE_JOBS:-2}
nice_level=${SANITIZE_NICE:-10}

echo "== configure $build"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_WERROR=ON \
  -DVIGIL_SANITIZE=address,undefined >/dev/null

targets=()
if [[ $all == 0 ]]; then
  while IFS= read -r f; do
    targets+=("$(basename "$f" .cc)")
  done < <(find "$src/tests" -path "$src/tests/integration" -prune -o \
             \( -name '*_test.cc' -o -name '*_fuzz.cc' \) -print | sort)
fi
echo "== build (instrumented): ${targets[*]:-everything}"
start=$(date +%s)
if (( ${#targets[@]} > 0 )); then
  nice -n "$nice_level" cmake --build "$build" -j "$jobs" --target "${targets[@]}"
else
  nice -n "$nice_level" cmake --build "$build" -j "$jobs"
fi
echo "== built in $(( $(date +%s) - start )) s"

# Leaks are reported at exit of every instrumented process; abort on the first error with a
# stack; UBSan prints a stack too. Child processes (vigil-node, vigil-verifier, vigilctl
# started by tests) inherit these.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$src/deploy/sanitize/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

echo "== test (instrumented)"
cd "$build"
start=$(date +%s)
status=0
# Executables not built (the integration tests, without --all) show up as *_NOT_BUILT.
ctest -j "$jobs" --output-on-failure --timeout 900 -E '_NOT_BUILT$' "$@" || status=$?
echo "== tests ran in $(( $(date +%s) - start )) s; ctest exit $status"
exit $status
