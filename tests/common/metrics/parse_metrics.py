#!/usr/bin/python3
"""Parses Prometheus text exposition (the file named by the argument) with the reference Python client's parser and
prints one line per sample, sorted: NAME{label="value",...} VALUE TYPE (values JSON-quoted). Exit 1 with the parser's
error when the text does not parse. Also checks every family's naming conventions: counters
end in _total, durations are in seconds."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    lines = []
    try:
        for family in text_string_to_metric_families(text):
            if family.type == "counter" and not any(
                    s.name.endswith("_total") for s in family.samples):
                print(f"counter {family.name} has no _total sample", file=sys.stderr)
                return 1
            if "duration" in family.name and not family.name.endswith("_seconds"):
                print(f"duration {family.name} is not in seconds", file=sys.stderr)
                return 1
            for s in family.samples:
                labels = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(s.labels.items()))
                lines.append(f"{s.name}{{{labels}}} {s.value!r} {family.type}")
    except Exception as e:  # the parser raises ValueError and others on malformed text
        print(f"does not parse: {e}", file=sys.stderr)
        return 1
    for line in sorted(lines):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
