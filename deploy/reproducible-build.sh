#!/usr/bin/env bash
# Checks that the build is reproducible: builds the BPF probe object and vigil-node twice, from
# two copies of one commit in two different temporary directories (different path lengths,
# build directory inside the source in one and outside in the other), and compares their
# SHA-256 digests. These digests are reference values: every build of a release must produce
# the same ones (docs/probes.md, "Reproducible reference values").
#
#   deploy/reproducible-build.sh [COMMIT]     (default HEAD; run from anywhere in the repository)
#
# Environment: VIGIL_REPRO_JOBS (parallel jobs, default 2), VIGIL_REPRO_KEEP=1 keeps the
# temporary directories. ccache is bypassed so that both builds really compile.
# Exits 0 when both digests match, 1 when one differs, 2 on a build error.
set -euo pipefail

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse --verify "${1:-HEAD}^{commit}")
jobs=${VIGIL_REPRO_JOBS:-2}
work=$(mktemp -d /tmp/vigil-repro.XXXXXX)
if [[ "${VIGIL_REPRO_KEEP:-0}" != 1 ]]; then
  trap 'rm -rf "$work"' EXIT
fi

# Source and build directories of the two builds.
src_a="$work/a/vigil"
build_a="$src_a/build"
src_b="$work/second-tree/src/vigil-$commit"
build_b="$work/second-tree/out"

outputs=(bpf/vigil_probes.bpf.o node/vigil-node)

build() {
  local src=$1 build=$2
  mkdir -p "$src"
  git -C "$repo" archive "$commit" | tar -x -C "$src"
  echo "== building $commit in $src (build directory $build)" >&2
  if ! CCACHE_DISABLE=1 cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      > "$work/$(basename "$build").log" 2>&1 ||
    ! CCACHE_DISABLE=1 cmake --build "$build" --target vigil-node -j "$jobs" \
      >> "$work/$(basename "$build").log" 2>&1; then
    tail -n 30 "$work/$(basename "$build").log" >&2
    echo "reproducible-build: build in $build failed" >&2
    exit 2
  fi
}

build "$src_a" "$build_a"
build "$src_b" "$build_b"

status=0
echo "commit $commit"
for out in "${outputs[@]}"; do
  a=$(sha256sum "$build_a/$out" | cut -d' ' -f1)
  b=$(sha256sum "$build_b/$out" | cut -d' ' -f1)
  if [[ "$a" == "$b" ]]; then
    echo "same      $a  $out"
  else
    echo "DIFFERENT $a  $out ($build_a)"
    echo "          $b  $out ($build_b)"
    status=1
  fi
done
if [[ $status -ne 0 && "${VIGIL_REPRO_KEEP:-0}" != 1 ]]; then
  echo "rerun with VIGIL_REPRO_KEEP=1 to keep both builds for comparison" >&2
fi
exit $status
