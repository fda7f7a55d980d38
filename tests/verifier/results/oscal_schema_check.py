#!/usr/bin/env python3
"""Validates a JSON document against a JSON schema with python3-jsonschema.

Usage: oscal_schema_check.py SCHEMA_FILE DOCUMENT_FILE
Exits 0 when the document is valid, 1 (printing every error) when it is not.
"""
import json
import sys

import jsonschema


def main():
    schema = json.load(open(sys.argv[1]))
    document = json.load(open(sys.argv[2]))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(document))
    for e in errors:
        path = "/".join(str(p) for p in e.absolute_path)
        print(f"{path}: {e.message}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
