#!/usr/bin/env bash
# Vigil quick start: sets up the machine, builds Vigil, and runs the local fabric:
# a software TPM (swtpm), the verifier, a node that enrolls through EK/AK credential
# activation, and two demo agent workloads (one hardened, one naive). Shows live what the
# verifier receives until Ctrl-C, which stops every process this script started.
#
#   ./deploy/quickstart.sh          run until Ctrl-C
#   ./deploy/quickstart.sh --once   stop once both demo workloads are appraised and the fleet
#                                   table (vigilctl status --rules) is shown
#   ./deploy/quickstart.sh --console  also serve the web console (https://127.0.0.1:9443/) and
#                                   Prometheus metrics (verifier http://127.0.0.1:9464/metrics,
#                                   node http://127.0.0.1:9465/metrics), and print their
#                                   addresses with a fresh sign-in link
#
# State (PKI, TPM state, node state, logs) lives in .vigil-demo/ at the repository root.
# Ports: verifier 127.0.0.1:7443 (mutual TLS) and :7444 (enrollment), swtpm 2321/2322;
# with --console, the console on :9443 (HTTPS) and metrics on :9464 and :9465 (plain HTTP).
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
once=0
console=0
for arg in "$@"; do
  case "$arg" in
    --once) once=1 ;;
    --console) console=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "quickstart.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
if [[ $(id -u) -ne 0 ]]; then
  echo "quickstart.sh: run as root (the node loads BPF probes and reads other processes)" >&2
  exit 1
fi

root=$(cd "$(dirname "$0")/.." && pwd)
build=${VIGIL_BUILD_DIR:-$root/build}
demo=$root/.vigil-demo
verifier_addr=127.0.0.1:7443
enroll_addr=127.0.0.1:7444
swtpm_port=${VIGIL_SWTPM_PORT:-2321}
console_addr=127.0.0.1:${VIGIL_CONSOLE_PORT:-9443}
metrics_addr=127.0.0.1:${VIGIL_METRICS_PORT:-9464}
node_metrics_addr=127.0.0.1:${VIGIL_NODE_METRICS_PORT:-9465}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Setting up the machine"
"$root/deploy/setup.sh"

step "Building Vigil"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target vigil-node vigil-verifier vigilctl \
  vigil-demo-hardened-agent vigil-demo-naive-agent
bin_node=$build/node/vigil-node
bin_verifier=$build/verifier/vigil-verifier
bin_ctl=$build/cli/vigilctl

mkdir -p "$demo"/{logs,node,swtpm}
chmod 700 "$demo"

pids=()
cleanup() {
  trap - EXIT INT TERM
  if ((${#pids[@]})); then
    step "Stopping everything the quick start started"
    # Reverse order, each one gone before the next: the node finishes with the verifier and
    # the TPM before they stop.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      if ((i == 0)); then
        # pids[0] is swtpm: an orderly TPM2_Shutdown(CLEAR) first, as a real machine does at
        # power-off, so the TPM does not count an unorderly shutdown and the next start is a
        # new boot (TPM Reset). Shutdown(STATE) would make it a TPM Restart (a resume), which
        # the verifier would expect to continue the same boot's measurement log.
        tpm2_shutdown -c -T "swtpm:host=127.0.0.1,port=$swtpm_port" >/dev/null 2>&1 || true
      fi
      kill -TERM "${pids[i]}" 2>/dev/null || true
      wait "${pids[i]}" 2>/dev/null || true
    done
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local what=$1 secs=$2
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "quickstart.sh: timed out waiting for $what" >&2
  return 1
}
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

step "PKI in $demo/pki"
if [[ ! -f $demo/pki/ca.crt ]]; then
  "$bin_ctl" pki init --dir "$demo/pki" --trust-domain vigil.local
fi
if [[ ! -f $demo/pki/client-operator.crt ]]; then
  "$bin_ctl" pki issue --dir "$demo/pki" --client operator
fi

step "Software TPM on 127.0.0.1:$swtpm_port"
if [[ ! -f $demo/swtpm/tpm2-00.permall ]]; then
  swtpm_setup --tpm2 --tpm-state "$demo/swtpm" --create-ek-cert --create-platform-cert \
    --overwrite --display >"$demo/logs/swtpm_setup.log" 2>&1 ||
    { cat "$demo/logs/swtpm_setup.log" >&2; exit 1; }
fi
swtpm socket --tpm2 --tpmstate dir="$demo/swtpm" \
  --server type=tcp,port="$swtpm_port",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((swtpm_port + 1)),bindaddr=127.0.0.1 \
  --flags not-need-init,startup-clear >"$demo/logs/swtpm.log" 2>&1 &
pids+=($!)
wait_for "swtpm" 10 port_open "127.0.0.1:$swtpm_port"
# A freshly started swtpm is a TPM after power-on: its PCRs are reset, so the node's
# measurement log of the previous run no longer describes it.
rm -f "$demo/node/measurements.json"

step "Reference values: what a genuine node of this build measures on this kernel"
# Typed YAML: each digest is accepted only for its own event type. An operator pins this file
# per release (and per policy bundle and kernel); the demo makes it from the build at hand.
"$bin_node" reference-values --out "$demo/reference-values.yaml" \
  2>"$demo/logs/reference-values.log" || { cat "$demo/logs/reference-values.log" >&2; exit 1; }
cat "$demo/reference-values.yaml"
# Boot reference values: this "machine" (the swtpm, no firmware) is one node class, pinned
# from its own boot PCRs. An operator pins each real node class from a known-good machine.
{
  echo "node_classes:"
  echo "  - name: quickstart-swtpm"
  echo "    pcrs:"
  tpm2_pcrread -T "swtpm:host=127.0.0.1,port=$swtpm_port" sha256:0,1,2,3,4,5,6,7 |
    awk '$2 == ":" { v = tolower($3); sub(/^0x/, "", v); printf "      %s: %s\n", $1, v }'
} >"$demo/boot-reference-values.yaml"
cat "$demo/boot-reference-values.yaml"
# The EK certificates swtpm made chain to its local CA (issuer and root).
cat /var/lib/swtpm-localca/issuercert.pem /var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem \
  >"$demo/ek-ca.pem"

step "Verifier on $verifier_addr (enrollment on $enroll_addr)"
operations=()
if ((console)); then
  operations=(--console-listen "$console_addr" --metrics-address "$metrics_addr")
fi
"$bin_verifier" --pki-dir "$demo/pki" --listen "$verifier_addr" --enroll-listen "$enroll_addr" \
  --db "$demo/verifier.db" --report-interval 5s --ek-ca-bundle "$demo/ek-ca.pem" \
  --reference-values "$demo/reference-values.yaml" \
  --boot-reference-values "$demo/boot-reference-values.yaml" \
  --policy "$root/deploy/policies/strict.yaml" \
  --policy "$root/deploy/policies/agent-scope.yaml" "${operations[@]}" \
  --log-level debug >"$demo/logs/verifier.log" 2>&1 &
pids+=($!)
wait_for "the verifier" 15 port_open "$verifier_addr"

# Where the console and the metrics are, with a sign-in link minted now (it works once,
# within 10 minutes; `vigilctl console token` mints another).
show_console() {
  ((console)) || return 0
  step "Web console and metrics"
  echo "Web console:  https://$console_addr/"
  echo "  Sign in (once, within 10 minutes) by opening:"
  echo "  $("$bin_ctl" console token --pki-dir "$demo/pki" --client operator \
    --url "https://$console_addr")"
  echo "  The browser does not know the demo CA: import $demo/pki/ca.crt as an authority,"
  echo "  or accept the warning for this local address. A new link:"
  echo "  $bin_ctl console token --pki-dir $demo/pki --client operator --url https://$console_addr"
  echo "Metrics:      http://$metrics_addr/metrics (verifier)"
  echo "              http://$node_metrics_addr/metrics (node)"
}
if ((console)); then
  wait_for "the web console" 15 port_open "$console_addr"
  wait_for "the metrics listener" 15 port_open "$metrics_addr"
fi

step "Demo workloads"
"$build/deploy/demo/vigil-demo-hardened-agent" >"$demo/logs/hardened-agent.log" 2>&1 &
pids+=($!)
"$build/deploy/demo/vigil-demo-naive-agent" >"$demo/logs/naive-agent.log" 2>&1 &
pids+=($!)
sleep 0.5
cat "$demo/logs/hardened-agent.log" "$demo/logs/naive-agent.log"

step "Node (TPM via swtpm, probes on syscall tracepoints)"
node_operations=()
if ((console)); then
  node_operations=(--metrics-address "$node_metrics_addr")
fi
"$bin_node" run --verifier "$verifier_addr" --enroll-address "$enroll_addr" \
  --ca-cert "$demo/pki/ca.crt" --state-dir "$demo/node" \
  --tcti "swtpm:host=127.0.0.1,port=$swtpm_port" \
  --measurement-log "$demo/node/measurements.json" \
  --select comm=hardened-agent --select comm=naive-agent "${node_operations[@]}" \
  >"$demo/logs/node.log" 2>&1 &
pids+=($!)

fleet=("$bin_ctl" status --verifier "$verifier_addr" --pki-dir "$demo/pki" --client operator)
started_ns=$(date +%s%N)
# True once a node's latest verdict, appraised since this script started, covers both demo
# agents under the strict policy.
both_appraised() {
  "${fleet[@]}" --json 2>/dev/null | python3 -c '
import json, sys
since = int(sys.argv[1])
for node in json.load(sys.stdin).get("nodes", []):
    v = node.get("latest_verdict", {})
    exes = {w["identity"].get("exe_path", "").rsplit("/", 1)[-1] for w in v.get("workloads", [])}
    if int(v.get("appraised_unix_nano", 0)) > since and \
            {"vigil-demo-hardened-agent", "vigil-demo-naive-agent"} <= exes:
        sys.exit(0)
sys.exit(1)' "$started_ns"
}

# Both agents' observed scopes (what each ran, loaded, wrote, read and connected to, from
# the node's latest evidence) and the scope rule's findings: what lies outside the scope
# deploy/policies/agent-scope.yaml declares for them.
show_scopes() {
  local node
  node=$("${fleet[@]}" --json 2>/dev/null | python3 -c '
import json, sys
nodes = json.load(sys.stdin).get("nodes", [])
print(nodes[0]["node_id"] if nodes else "")')
  [[ -n "$node" ]] || return 0
  step "Workload scopes (vigilctl scope show $node agent-runtime)"
  "$bin_ctl" scope show "$node" agent-runtime --verifier "$verifier_addr" --pki-dir "$demo/pki" \
    --client operator || true
  step "Out-of-scope findings (deploy/policies/agent-scope.yaml)"
  "${fleet[@]}" --json 2>/dev/null | python3 -c '
import json, sys
for node in json.load(sys.stdin).get("nodes", []):
    for w in node.get("latest_verdict", {}).get("workloads", []):
        exe = w["identity"].get("exe_path", "").rsplit("/", 1)[-1]
        scope = [r for r in w.get("rules", []) if r.get("kind") == "scope"]
        if not scope:
            continue  # a workload of a policy without a scope rule
        found = [r for r in scope if r.get("status") != "TRUST_AFFIRMING"]
        print(exe + ": " + str(len(found)) + " finding(s)"
              + ("" if found else ": within its declared scope"))
        for r in found:
            print("  " + r["status"][6:] + ": " + r["reason"])'
}

step "What the verifier receives (logs in $demo/logs/)"
if ((once)); then
  # Show lines as they come until both workloads have been appraised under the policy.
  for ((i = 0; i < 1200; i++)); do
    if ((i % 10 == 0)) && both_appraised; then
      grep -E 'report |verdict|enrol|polic' "$demo/logs/verifier.log"
      step "The fleet (vigilctl status --rules): verdicts under deploy/policies/strict.yaml"
      "${fleet[@]}" --rules
      show_scopes
      show_console
      echo
      echo "Both demo workloads were appraised; stopping (--once)."
      exit 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "quickstart.sh: the node exited; its log:" >&2
      tail -n 30 "$demo/logs/node.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "quickstart.sh: both workloads were not appraised within 120 s; see $demo/logs/" >&2
  exit 1
fi
# Until both agents are appraised, then the fleet table, then the verifier's log as it grows.
for ((i = 0; i < 120; i++)); do
  both_appraised && break
  sleep 1
done
step "The fleet (vigilctl status --rules): verdicts under deploy/policies/strict.yaml"
"${fleet[@]}" --rules || true
show_scopes
show_console
echo
echo "(Ctrl-C stops everything; \`${fleet[*]}\` shows the fleet again)"
tail -n +1 -F "$demo/logs/verifier.log" &
pids+=($!)
wait "${pids[-2]}"
echo "quickstart.sh: the node exited; its log:" >&2
tail -n 30 "$demo/logs/node.log" >&2
exit 1
