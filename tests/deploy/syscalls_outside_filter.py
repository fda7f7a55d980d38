#!/usr/bin/python3
"""Prints the system calls a traced program made that a unit's SystemCallFilter= refuses.

Usage: syscalls_outside_filter.py UNIT_FILE STRACE_OUTPUT PROGRAM_NAME

STRACE_OUTPUT is `strace -f -o FILE` output; only the process that execve'd a path ending in
/PROGRAM_NAME, and the threads and children it cloned afterwards, are counted. The filter
follows systemd's rules: the first SystemCallFilter= line without "~" is the allow list,
lines starting with "~" deny; groups (@name) are expanded with `systemd-analyze
syscall-filter`. Prints one name per line; exit 1 when there is any, 2 on a usage error.
"""

import re
import subprocess
import sys


def groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                         text=True, check=True).stdout
    table, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            table[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            table[current].append(line.split()[0])
    return table


def expand(names, table, seen=None):
    seen = set() if seen is None else seen
    calls = set()
    for n in names:
        if not n.startswith("@"):
            calls.add(n)
        elif n not in seen:
            seen.add(n)
            calls |= expand(table[n], table, seen)
    return calls


def unit_filter(path):
    allow, deny = None, set()
    table = groups()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("SystemCallFilter="):
                continue
            value = line.split("=", 1)[1].strip()
            if value.startswith("~"):
                deny |= expand(value[1:].split(), table)
            elif allow is None:
                allow = expand(value.split(), table)
            else:
                allow |= expand(value.split(), table)
    if allow is None:
        sys.exit(f"{path}: no SystemCallFilter= allow list")
    return allow - deny


def traced_calls(path, program):
    line_re = re.compile(r"^(\d+)\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]")
    ours, calls, exec_pending = set(), set(), set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = line_re.match(line)
            if not m:
                continue
            pid, name = m.group(1), m.group(2)
            if name == "execve":
                # strace splits a call another thread interrupts: "execve(...) <unfinished ...>",
                # then "<... execve resumed>) = 0" on a later line.
                if re.search(r'execve\("[^"]*/' + re.escape(program) + '"', line):
                    if line.rstrip().endswith("<unfinished ...>"):
                        exec_pending.add(pid)
                    elif "= 0" in line:
                        ours.add(pid)
                elif "resumed>" in line and pid in exec_pending:
                    exec_pending.discard(pid)
                    if re.search(r"= 0\s*$", line):
                        ours.add(pid)
            if pid not in ours:
                continue
            calls.add(name)
            if name in ("clone", "clone3", "fork", "vfork"):
                child = re.search(r"= (\d+)\s*$", line)
                if child:
                    ours.add(child.group(1))
    if not ours:
        sys.exit(f"{path}: {program} was never executed")
    return calls


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    allowed = unit_filter(sys.argv[1])
    outside = sorted(traced_calls(sys.argv[2], sys.argv[3]) - allowed)
    for name in outside:
        print(name)
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
