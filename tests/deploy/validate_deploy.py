#!/usr/bin/python3
"""Checks deploy/systemd and deploy/kubernetes against each other and against the binaries.

Usage: validate_deploy.py DEPLOY_DIR VIGIL_NODE VIGIL_VERIFIER

Every problem is printed on its own line; the exit status is 1 when there is any, else 0.
What is checked: each manifest parses and has apiVersion, kind and metadata.name; the fields
each kind needs; the node DaemonSet's capabilities equal the node unit's
CapabilityBoundingSet; and every flag in the units' ExecStart and the containers' args is one
the binary's --help lists, so the deployment files cannot drift from the code.
"""

import os
import re
import shlex
import subprocess
import sys

import yaml

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def parse_unit(path):
    """A systemd unit as {(section, key): [values]}, continuation lines joined."""
    entries = {}
    section = None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            problem(path, f"not a key=value line: {line!r}")
            continue
        entries.setdefault((section, key.strip()), []).append(value.strip())
    return entries


def help_flags(argv):
    """The long flags a binary's --help lists (argv includes the subcommand, if any)."""
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        problem(" ".join(argv), f"--help exited {out.returncode}: {out.stderr.strip()}")
        return set()
    # Only option lines ("  --flag TEXT" or "  -h,--help"), not flags named in descriptions.
    return set(re.findall(r"^\s+(?:-[a-zA-Z],)?(--[a-z0-9][a-z0-9-]*)", out.stdout, re.M))


def check_args(where, args, binaries):
    """args[0] may name a subcommand of the binary; every --flag must be in its --help."""
    binary = binaries
    sub = []
    if args and not args[0].startswith("-"):
        sub = [args[0]]
        args = args[1:]
    known = help_flags([binary] + sub)
    if not known:
        problem(where, f"{' '.join([binary] + sub)} --help lists no flags")
    for a in args:
        if not a.startswith("--"):
            continue
        flag = a.split("=", 1)[0]
        if flag not in known:
            problem(where, f"flag {flag} is not in `{os.path.basename(binary)} "
                    f"{' '.join(sub)} --help`".replace("  ", " "))


SECCOMP_DIRECTIVES = (
    "SystemCallFilter", "SystemCallArchitectures", "SystemCallLog", "RestrictNamespaces",
    "RestrictAddressFamilies", "MemoryDenyWriteExecute", "LockPersonality", "RestrictRealtime",
    "RestrictSUIDSGID", "ProtectClock", "ProtectHostname", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectKernelTunables", "PrivateDevices")


def unit_caps(entries, where):
    values = entries.get(("Service", "CapabilityBoundingSet"), [])
    if len(values) != 1:
        problem(where, "needs exactly one CapabilityBoundingSet= line")
        return set()
    caps = set(values[0].split())
    for c in caps:
        if not re.fullmatch(r"CAP_[A-Z_]+", c):
            problem(where, f"not a capability name: {c}")
    return caps


def check_units(deploy, node_bin, verifier_bin):
    units = {}
    for name, binary in (("vigil-node.service", node_bin),
                         ("vigil-verifier.service", verifier_bin)):
        path = os.path.join(deploy, "systemd", name)
        e = parse_unit(path)
        units[name] = e
        execs = e.get(("Service", "ExecStart"), [])
        if len(execs) != 1:
            problem(path, "needs exactly one ExecStart=")
            continue
        argv = shlex.split(execs[0])
        if os.path.basename(argv[0]) != os.path.basename(binary):
            problem(path, f"ExecStart runs {argv[0]}, not {os.path.basename(binary)}")
        check_args(path, argv[1:], binary)
        if e.get(("Service", "NoNewPrivileges")) != ["yes"]:
            problem(path, "NoNewPrivileges=yes is missing")
    verifier = units["vigil-verifier.service"]
    where = os.path.join(deploy, "systemd", "vigil-verifier.service")
    if verifier.get(("Service", "CapabilityBoundingSet")) != [""]:
        problem(where, "the verifier's CapabilityBoundingSet must be empty")
    if verifier.get(("Service", "DynamicUser")) != ["yes"]:
        problem(where, "the verifier must run as a DynamicUser")
    node_where = os.path.join(deploy, "systemd", "vigil-node.service")
    node_caps = unit_caps(units["vigil-node.service"], node_where)
    # systemd implements these with a seccomp filter, which every process of the unit
    # inherits; the kernel copies out other processes' filters only to a caller without one.
    for key in SECCOMP_DIRECTIVES:
        values = units["vigil-node.service"].get(("Service", key), [])
        if values and values[-1] not in ("", "no", "false"):
            problem(node_where, f"{key}= installs a seccomp filter: the node could not read "
                    "its workloads' filters")
    if not any(v.startswith("/dev/tpmrm0") for v in
               units["vigil-node.service"].get(("Service", "DeviceAllow"), [])):
        problem(node_where, "DeviceAllow for /dev/tpmrm0 is missing")
    return node_caps


def check_pod(where, spec, node_bin_or_verifier, kind):
    containers = spec.get("containers") or []
    if not containers:
        problem(where, "no containers")
    for c in containers:
        cw = f"{where} container {c.get('name')}"
        if not c.get("image"):
            problem(cw, "no image")
        res = c.get("resources") or {}
        if not res.get("requests") or not (res.get("limits") or {}).get("memory"):
            problem(cw, "resources need requests and a memory limit")
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            problem(cw, "privileged: true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(cw, "allowPrivilegeEscalation must be false")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            problem(cw, "capabilities must drop ALL")
        check_args(cw, [str(a) for a in c.get("args") or []], node_bin_or_verifier)
        mounts = {m["name"] for m in c.get("volumeMounts") or []}
        volumes = {v["name"] for v in spec.get("volumes") or []}
        for m in sorted(mounts - volumes):
            problem(cw, f"volumeMount {m} has no volume")
    return containers


def check_verifier_store(where, spec, pod, by_kind):
    """SQLite (--db) allows one replica, replaced (Recreate), never two at once; PostgreSQL
    takes its URL from a Secret the manifests define, as $VIGIL_STORE_URL, never from an
    argument (the password would show on the command line)."""
    secrets = {d["metadata"]["name"]: d for _, d in by_kind.get("Secret", [])}
    for c in pod.get("containers") or []:
        args = [str(a) for a in c.get("args") or []]
        if any(a.startswith("--store") for a in args):
            problem(where, "the PostgreSQL URL must come from a Secret, not an argument")
        env = {e.get("name"): e for e in c.get("env") or []}
        store = env.get("VIGIL_STORE_URL")
        uses_db = any(a.startswith("--db") for a in args)
        if uses_db and store is not None:
            problem(where, "--db and VIGIL_STORE_URL exclude each other")
        if uses_db:
            if spec.get("replicas") != 1:
                problem(where, "replicas must be 1 with the SQLite store")
            if (spec.get("strategy") or {}).get("type") != "Recreate":
                problem(where, "the SQLite store needs strategy Recreate (one writer)")
        elif store is not None:
            ref = (store.get("valueFrom") or {}).get("secretKeyRef") or {}
            secret = secrets.get(ref.get("name"))
            if secret is None:
                problem(where, f"VIGIL_STORE_URL reads Secret {ref.get('name')}, not defined")
            elif ref.get("key") not in {**(secret.get("data") or {}),
                                        **(secret.get("stringData") or {})}:
                problem(where, f"Secret {ref.get('name')} has no key {ref.get('key')}")
        else:
            problem(where, "the verifier needs a store: --db or VIGIL_STORE_URL")


CLUSTER_SCOPED = {"Namespace", "ValidatingWebhookConfiguration"}

# The path vigil-verifier's admission listener serves (verifier/admission_server.h).
ADMISSION_PATH = "/validate"


def check_admission_webhooks(by_kind, namespace, services, ports):
    """Every webhook calls the verifier's admission port through its Service, on the path the
    listener serves, with AdmissionReview v1, for pod creation and binding, and never for the
    verifier's own namespace."""
    for path, cfg in by_kind.get("ValidatingWebhookConfiguration", []):
        hooks = cfg.get("webhooks") or []
        if not hooks:
            problem(path, "a ValidatingWebhookConfiguration without webhooks")
        for h in hooks:
            hw = f"{path} webhook {h.get('name')}"
            if "v1" not in (h.get("admissionReviewVersions") or []):
                problem(hw, "admissionReviewVersions must include v1")
            if h.get("sideEffects") != "None":
                problem(hw, "sideEffects must be None: the verifier changes nothing")
            if h.get("failurePolicy") not in ("Fail", "Ignore"):
                problem(hw, "failurePolicy must be stated (Fail or Ignore)")
            svc = ((h.get("clientConfig") or {}).get("service")) or {}
            if svc.get("namespace") != namespace or svc.get("name") not in services:
                problem(hw, f"clientConfig.service is not a Service in {namespace}")
            elif svc.get("path") != ADMISSION_PATH:
                problem(hw, f"clientConfig.service.path is not {ADMISSION_PATH}")
            else:
                target = services[svc["name"]].get(svc.get("port", 443))
                if target not in ("admission", ports.get("admission")):
                    problem(hw, "clientConfig.service.port does not reach the admission port")
            resources = set()
            for rule in h.get("rules") or []:
                if "CREATE" in (rule.get("operations") or []):
                    resources.update(rule.get("resources") or [])
            for needed in ("pods", "pods/binding"):
                if needed not in resources:
                    problem(hw, f"no CREATE rule for {needed}")
            labels = ((h.get("namespaceSelector") or {}).get("matchLabels")) or {}
            if not labels:
                problem(hw, "namespaceSelector must select namespaces by label, so the "
                        f"verifier's own namespace {namespace} is never gated by it")


def check_kubernetes(deploy, node_bin, verifier_bin, node_caps):
    kdir = os.path.join(deploy, "kubernetes")
    kust_path = os.path.join(kdir, "kustomization.yaml")
    with open(kust_path, encoding="utf-8") as f:
        kust = yaml.safe_load(f)
    files = list(kust.get("resources") or [])
    on_disk = sorted(n for n in os.listdir(kdir) if n.endswith(".yaml") and
                     n != "kustomization.yaml")
    if sorted(files) != on_disk:
        problem(kust_path, f"resources {sorted(files)} are not the manifests {on_disk}")
    namespace = kust.get("namespace")
    configmaps = set()
    for gen in kust.get("configMapGenerator") or []:
        configmaps.add(gen["name"])
        for spec in gen.get("files") or []:
            src = spec.split("=", 1)[-1]
            if not os.path.isfile(os.path.join(kdir, src)):
                problem(kust_path, f"{src} does not exist")
    copy = os.path.join(kdir, "policies", "strict.yaml")
    with open(copy, "rb") as a, open(os.path.join(deploy, "policies", "strict.yaml"), "rb") as b:
        if a.read() != b.read():
            problem(copy, "differs from deploy/policies/strict.yaml")

    docs = []
    for name in files:
        path = os.path.join(kdir, name)
        try:
            with open(path, encoding="utf-8") as f:
                loaded = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            problem(path, f"does not parse: {e}")
            continue
        for d in loaded:
            if not isinstance(d, dict):
                problem(path, "a document is not a mapping")
                continue
            for field in ("apiVersion", "kind"):
                if not d.get(field):
                    problem(path, f"a document has no {field}")
            if not (d.get("metadata") or {}).get("name"):
                problem(path, f"a {d.get('kind')} has no metadata.name")
            docs.append((path, d))

    by_kind = {}
    for path, d in docs:
        by_kind.setdefault(d.get("kind"), []).append((path, d))
        ns = (d.get("metadata") or {}).get("namespace")
        if d.get("kind") in CLUSTER_SCOPED:
            if ns is not None:
                problem(path, f"{d['kind']} {d['metadata']['name']} is cluster-scoped: no namespace")
        elif ns != namespace:
            problem(path, f"{d['kind']} {d['metadata']['name']} is not in {namespace}")
    if [d["metadata"]["name"] for _, d in by_kind.get("Namespace", [])] != [namespace]:
        problem(kdir, f"needs the Namespace {namespace}")
    accounts = {d["metadata"]["name"] for _, d in by_kind.get("ServiceAccount", [])}
    claims = {d["metadata"]["name"] for _, d in by_kind.get("PersistentVolumeClaim", [])}
    configmaps.add("vigil-reference-values")  # made by the operator per release

    pods = {}
    for kind in ("Deployment", "DaemonSet"):
        for path, d in by_kind.get(kind, []):
            where = f"{path} {kind} {d['metadata']['name']}"
            spec = d.get("spec") or {}
            match = (spec.get("selector") or {}).get("matchLabels") or {}
            template = spec.get("template") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            if not match or any(labels.get(k) != v for k, v in match.items()):
                problem(where, "selector.matchLabels do not match the template's labels")
            pod = template.get("spec") or {}
            if pod.get("serviceAccountName") not in accounts:
                problem(where, f"serviceAccount {pod.get('serviceAccountName')} not defined")
            if pod.get("automountServiceAccountToken") is not False:
                problem(where, "mounts an API token it does not need")
            for v in pod.get("volumes") or []:
                if "configMap" in v and v["configMap"]["name"] not in configmaps:
                    problem(where, f"ConfigMap {v['configMap']['name']} is not made anywhere")
                if "persistentVolumeClaim" in v and \
                        v["persistentVolumeClaim"]["claimName"] not in claims:
                    problem(where, f"PVC {v['persistentVolumeClaim']['claimName']} not defined")
            binary = node_bin if kind == "DaemonSet" else verifier_bin
            pods[kind] = (where, pod, labels, check_pod(where, pod, binary, kind))
            if kind == "Deployment":
                check_verifier_store(where, spec, pod, by_kind)

    if "DaemonSet" not in pods or "Deployment" not in pods:
        problem(kdir, "needs the node DaemonSet and the verifier Deployment")
        return
    where, pod, _, containers = pods["DaemonSet"]
    if pod.get("hostPID") is not True:
        problem(where, "hostPID must be true: the node observes the host's processes")
    if {"operator": "Exists"} not in (pod.get("tolerations") or []):
        problem(where, "must tolerate every taint (docs/deploy.md)")
    host_paths = {v["hostPath"]["path"] for v in pod.get("volumes") or [] if "hostPath" in v}
    for needed in ("/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/bpf", "/sys/fs/cgroup",
                   "/dev/tpmrm0",
                   "/var/lib/vigil-node", "/run/vigil"):
        if needed not in host_paths:
            problem(where, f"no hostPath volume for {needed}")
    for c in containers:
        added = set((c.get("securityContext") or {}).get("capabilities", {}).get("add") or [])
        as_unit = {"CAP_" + a for a in added}
        for cap in sorted(as_unit - node_caps):
            problem(where, f"adds {cap}, which vigil-node.service's CapabilityBoundingSet lacks")
        for cap in sorted(node_caps - as_unit):
            problem(where, f"lacks {cap}, which vigil-node.service's CapabilityBoundingSet has")

    where, pod, labels, containers = pods["Deployment"]
    ports = {}
    for c in containers:
        for p in c.get("ports") or []:
            ports[p.get("name")] = p["containerPort"]
    services = {}
    for path, svc in by_kind.get("Service", []):
        sw = f"{path} Service {svc['metadata']['name']}"
        services[svc["metadata"]["name"]] = {
            p.get("port"): p.get("targetPort", p.get("port"))
            for p in (svc.get("spec") or {}).get("ports") or []}
        sel = (svc.get("spec") or {}).get("selector") or {}
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            problem(sw, "selector does not match the verifier's pod labels")
        for p in (svc.get("spec") or {}).get("ports") or []:
            target = p.get("targetPort", p.get("port"))
            if target not in ports and target not in ports.values():
                problem(sw, f"targetPort {target} is no container port of the verifier")
    check_admission_webhooks(by_kind, namespace, services, ports)
    flags = [("--listen", "attest"), ("--enroll-listen", "enroll")]
    if by_kind.get("ValidatingWebhookConfiguration"):
        flags.append(("--admission-listen", "admission"))
    for flag, port in flags:
        args = [a for c in containers for a in c.get("args") or []]
        values = [a.split("=", 1)[1] for a in args if a.startswith(flag + "=")]
        if len(values) != 1 or not values[0].endswith(f":{ports.get(port)}"):
            problem(where, f"{flag} does not listen on the container port {port}")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    deploy, node_bin, verifier_bin = sys.argv[1:]
    node_caps = check_units(deploy, node_bin, verifier_bin)
    check_kubernetes(deploy, node_bin, verifier_bin, node_caps)
    for p in problems:
        print(p)
    if not problems:
        print("deploy files: all checks passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
