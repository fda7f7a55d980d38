#!/usr/bin/env python3
"""Parses a JUnit XML file with xml.etree and prints what vigilctl's tests assert on.

Usage: junit_check.py FILE
Prints one JSON object: the suite's counts as its attributes say and as counted, and each
testcase as "classname|name|state|failure types|failure messages". Exits 1 when the file is
not well-formed XML or its counts disagree with its testcases.
"""
import json
import sys
import xml.etree.ElementTree as ET


def main():
    root = ET.parse(sys.argv[1]).getroot()
    if root.tag != "testsuites":
        print(f"root element is {root.tag}, not testsuites")
        return 1
    suites = root.findall("testsuite")
    cases = []
    for suite in suites:
        for case in suite.findall("testcase"):
            failures = case.findall("failure")
            skipped = case.findall("skipped")
            state = "failed" if failures else ("skipped" if skipped else "passed")
            cases.append({
                "classname": case.get("classname"),
                "name": case.get("name"),
                "state": state,
                "types": [f.get("type") for f in failures],
                "messages": [f.get("message") for f in failures],
                "skipped": [s.get("message") for s in skipped],
            })
    counted = {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c["state"] == "failed"),
        "skipped": sum(1 for c in cases if c["state"] == "skipped"),
    }
    for element in [root] + suites:
        for key, value in counted.items():
            if int(element.get(key, "-1")) != value:
                print(f"{element.tag} says {key}={element.get(key)}, counted {value}")
                return 1
    print(json.dumps({"suites": len(suites), "counts": counted, "cases": cases}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
