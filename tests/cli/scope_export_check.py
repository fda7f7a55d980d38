#!/usr/bin/env python3
"""Checks a `vigilctl scope export` document with python3-jsonschema, and for CycloneDX
also that every Debian package URL reads back as the component's name and version.

Usage: scope_export_check.py SCHEMA_FILE DOCUMENT_FILE [--purls]
Exits 0 when the document is valid, 1 (printing every error) when it is not.

The package URL reader follows the purl specification's parsing rules (scheme, type,
namespace, name, version, qualifiers; each component percent-decoded), written here.
"""
import json
import sys
import urllib.parse

import jsonschema


def parse_purl(purl):
    """Returns (type, namespace, name, version, qualifiers) of a package URL."""
    if not purl.startswith("pkg:"):
        raise ValueError(f"{purl}: scheme is not pkg")
    rest = purl[4:].lstrip("/")
    if "#" in rest:
        rest, _ = rest.rsplit("#", 1)
    qualifiers = {}
    if "?" in rest:
        rest, query = rest.rsplit("?", 1)
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            qualifiers[key.lower()] = urllib.parse.unquote(value)
    version = None
    raw = []
    if "@" in rest:
        rest, version = rest.rsplit("@", 1)
        raw.append(version)
        version = urllib.parse.unquote(version)
    segments = rest.split("/")
    ptype = segments[0].lower()
    raw.append(segments[-1])
    name = urllib.parse.unquote(segments[-1])
    namespace = "/".join(urllib.parse.unquote(s) for s in segments[1:-1])
    for component in raw:
        for ch in component:
            if not (ch.isalnum() or ch in ".-_~%"):
                raise ValueError(f"{purl}: '{ch}' is not percent-encoded")
    return ptype, namespace, name, version, qualifiers


def check_purls(components, errors):
    for c in components:
        if "purl" in c:
            try:
                ptype, namespace, name, version, qualifiers = parse_purl(c["purl"])
            except ValueError as e:
                errors.append(str(e))
                continue
            if (ptype, namespace) != ("deb", "debian"):
                errors.append(f"{c['purl']}: not pkg:deb/debian")
            if name != c.get("name") or version != c.get("version"):
                errors.append(f"{c['purl']}: reads back as {name}@{version}, "
                              f"not {c.get('name')}@{c.get('version')}")
            if "arch" not in qualifiers:
                errors.append(f"{c['purl']}: no arch qualifier")
            if c.get("bom-ref") != c["purl"]:
                errors.append(f"{c['purl']}: bom-ref differs")
        check_purls(c.get("components", []), errors)


def main():
    schema = json.load(open(sys.argv[1]))
    document = json.load(open(sys.argv[2]))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = []
    for e in jsonschema.Draft7Validator(schema).iter_errors(document):
        path = "/".join(str(p) for p in e.absolute_path)
        errors.append(f"{path}: {e.message}")
    if "--purls" in sys.argv[3:]:
        check_purls(document.get("components", []), errors)
        refs = [c["bom-ref"] for c in document.get("components", []) if "bom-ref" in c]
        if len(refs) != len(set(refs)):
            errors.append("bom-refs repeat")
    for line in errors:
        print(line)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
