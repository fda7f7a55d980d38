#!/usr/bin/env python3
"""Measures what Vigil's build flags cost: CPU seconds to compile a sample of the project's
translation units and to link one test executable, with the flags the build uses (-g1; test
code at -Og; lld) against the baseline they replaced (-g everywhere, test code at -O2; ld.bfd),
both measured in this run on this machine. ccache is bypassed, so every compile is real.

  bench/build_time.py [BUILD_DIR] [--every N]

BUILD_DIR is a configured build (default: build/), whose compile_commands.json names the
commands. --every N compiles every Nth translation unit (default 8). CPU time (user + sys of
the compiler) is what a loaded CI machine pays; wall time depends on what else runs.
"""
import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile


def cpu_seconds(argv, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit("build_time: command failed:\n  " + " ".join(argv) + "\n" +
                 proc.stderr.decode(errors="replace"))
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def without_launcher(argv):
    return argv[1:] if os.path.basename(argv[0]) == "ccache" else argv


def baseline_flags(argv):
    """The flags before: full debug information, test code at -O2, ld.bfd."""
    return [a for a in argv if a not in ("-g1", "-Og", "-fuse-ld=lld")]


def redirect_output(argv, out):
    argv = list(argv)
    for flag, path in (("-o", out), ("-MF", out + ".d")):
        if flag in argv:
            argv[argv.index(flag) + 1] = path
    return argv


def link_command(build_dir, target):
    """The command ninja links `target` with, or None when its objects are not built."""
    if not os.path.exists(os.path.join(build_dir, target)):
        return None
    proc = subprocess.run(["ninja", "-C", build_dir, "-t", "commands", target],
                          stdout=subprocess.PIPE, check=True, text=True)
    for line in proc.stdout.splitlines():
        # ninja chains a link with its post-build steps: ": && <link> && cd ... && ...".
        segment = []
        for token in shlex.split(line) + ["&&"]:
            if token != "&&":
                segment.append(token)
                continue
            if "-o" in segment and segment[segment.index("-o") + 1] == target:
                return segment
            segment = []
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", nargs="?", default="build")
    parser.add_argument("--every", type=int, default=8)
    args = parser.parse_args()
    db_path = os.path.join(args.build_dir, "compile_commands.json")
    try:
        with open(db_path) as f:
            db = json.load(f)
    except OSError as e:
        sys.exit(f"build_time: {db_path}: {e.strerror}; configure the build first")
    entries = [e for e in db if e["file"].endswith(".cc")]
    entries.sort(key=lambda e: e["file"])
    sample = entries[:: args.every]
    if not sample:
        sys.exit("build_time: no C++ translation units in " + db_path)
    if not any("-g1" in shlex.split(e["command"]) for e in sample):
        sys.exit("build_time: the build was configured with VIGIL_FULL_DEBUG_INFO=ON; "
                 "nothing to compare")

    link = None
    totals = {"baseline": 0.0, "vigil": 0.0}
    tests = {"baseline": 0.0, "vigil": 0.0}
    with tempfile.TemporaryDirectory(prefix="vigil-build-time-") as tmp:
        for i, e in enumerate(sample, 1):
            argv = without_launcher(shlex.split(e["command"]))
            out = os.path.join(tmp, "tu.o")
            name = os.path.relpath(e["file"], os.path.dirname(os.path.abspath(args.build_dir)))
            row = []
            for kind, cmd in (("baseline", baseline_flags(argv)), ("vigil", argv)):
                t = cpu_seconds(redirect_output(cmd, out), e["directory"])
                totals[kind] += t
                if "/tests/" in e["file"]:
                    tests[kind] += t
                row.append(t)
            print(f"[{i}/{len(sample)}] {name}: {row[0]:.1f} s -> {row[1]:.1f} s", flush=True)

        link = link_command(args.build_dir, "tests/tpm_fabric_test")
        if link is not None:
            out = os.path.join(tmp, "linked")
            argv = redirect_output(link, out)
            links = {kind: cpu_seconds(cmd, args.build_dir)
                     for kind, cmd in (("baseline", baseline_flags(argv)), ("vigil", argv))}

    print()
    if link is not None:
        print(f"link CPU, tests/tpm_fabric_test: baseline (ld.bfd) {links['baseline']:.2f} s, "
              f"vigil ({'lld' if '-fuse-ld=lld' in link else 'ld.bfd'}) {links['vigil']:.2f} s  "
              f"ratio {links['vigil'] / links['baseline']:.2f}")
    else:
        print("link: tests/tpm_fabric_test is not built; link not measured")
    print(f"compile CPU, {len(sample)} of {len(entries)} translation units:")
    print(f"  baseline (-g, tests -O2) {totals['baseline']:.1f} s")
    print(f"  vigil    (-g1, tests -Og) {totals['vigil']:.1f} s  "
          f"ratio {totals['vigil'] / totals['baseline']:.2f}")
    if tests["baseline"] > 0:
        print(f"  of which test code: {tests['baseline']:.1f} s -> {tests['vigil']:.1f} s  "
              f"ratio {tests['vigil'] / tests['baseline']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
