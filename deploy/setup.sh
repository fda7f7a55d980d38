#!/usr/bin/env bash
# Installs every Debian package that building, testing and running Vigil's demo need.
# Idempotent: packages already present are left alone, and apt's index is refreshed only
# when something is missing. Run as root.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang llvm clang-format lld
  # wire contract and RPC
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc libabsl-dev
  # crypto and TPM
  libssl-dev openssl libtss2-dev swtpm swtpm-tools tpm2-tools
  # eBPF probes
  libbpf-dev bpftool libelf-dev zlib1g-dev
  # storage, config, logging, flags
  libsqlite3-dev liblz4-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  # the verifier's malloc (VIGIL_ALLOCATOR, docs/verifier.md#memory-allocator)
  libmimalloc-dev
  # the PostgreSQL store (libpqxx) and the real server its tests start (initdb, pg_ctl)
  libpqxx-dev libpq-dev postgresql-15
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # tools the tests and demo use
  iproute2 procps python3 ccache util-linux
  # the naive demo agent's shell-out (a packaged program in its runtime scope)
  curl
  # checks of deploy/systemd and deploy/kubernetes (systemd-analyze, YAML, syscall traces)
  systemd python3-yaml python3-prometheus-client strace
  # webhooks (HTTP client), and the independent checks of EAR tokens and OSCAL documents
  libcpp-httplib-dev python3-jwt python3-cryptography python3-jsonschema
  # the web console's browser test (headless chromium over the DevTools protocol)
  chromium python3-websocket
  # load for deploy/stress-tests.sh
  stress-ng
  # profiling the verifier under vigil-fleetsim's load (perf record -g -p PID)
  linux-perf
)

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#packages[@]} packages present"
fi
