#!/usr/bin/env bash
# Sets up, builds and runs every Vigil test (unit, integration with swtpm, real BPF and real
# gRPC on loopback). Run as root on Debian 12. Exit status is ctest's.
#   ./deploy/test.sh               everything
#   ./deploy/test.sh -R Regex      only tests whose name matches (passed to ctest)
#   ./deploy/test.sh --build-only  install packages and build, run nothing
# The build directory is $VIGIL_BUILD_DIR (default: build/ in the checkout).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/setup.sh"
build=${VIGIL_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_WERROR=ON
cmake --build "$build" -j"$(nproc)"
if [[ ${1:-} == --build-only ]]; then
  exit 0
fi
cd "$build"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
