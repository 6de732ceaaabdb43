#!/usr/bin/env python3
"""Judges a STIX 2.1 bundle with the OASIS tools, as a TIP importing it would.

Usage: stix-check.py BUNDLE.json

Runs stix2-validator (the OASIS validator, default options) and stix2.parse with
allow_custom=False, then prints a JSON summary on stdout:
  {"errors": [...], "warnings": {"103": n, ...}, "objects": n, "types": {...},
   "unmarked": [ids of objects without object_marking_refs, marking definitions aside],
   "markings": {marking-definition id: objects referring to it}}
Exits non-zero, with the reason, when stix2 refuses the bundle. Run by the CLI tests
(crates/rampart/tests/cli/intel.rs).
"""
import json
import re
import sys
from collections import Counter

import stix2
from stix2validator import ValidationOptions, validate_file


def main():
    path = sys.argv[1]
    results = validate_file(path, ValidationOptions())
    errors, warnings = [], Counter()
    for obj in results.object_results:
        for e in obj.errors:
            errors.append(f"{obj.object_id}: {e}")
        for w in obj.warnings:
            m = re.search(r"\{(\d+)\}", str(w))
            warnings[m.group(1) if m else str(w)] += 1
    if results.fatal is not None:
        errors.append(f"fatal: {results.fatal.message}")
    with open(path) as f:
        text = f.read()
    try:
        bundle = stix2.parse(text, allow_custom=False)
    except Exception as e:  # the library's own exception types vary by version
        print(f"stix2.parse refused the bundle: {e}", file=sys.stderr)
        sys.exit(1)
    objects = bundle.objects
    markings = Counter()
    unmarked = []
    for o in objects:
        if o.type == "marking-definition":
            continue
        refs = o.get("object_marking_refs") or []
        if not refs:
            unmarked.append(o.id)
        for r in refs:
            markings[r] += 1
    print(json.dumps({
        "errors": errors,
        "warnings": dict(warnings),
        "objects": len(objects),
        "types": dict(Counter(o.type for o in objects)),
        "unmarked": unmarked,
        "markings": dict(markings),
    }))


if __name__ == "__main__":
    main()
