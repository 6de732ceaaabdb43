#!/usr/bin/env python3
"""Walks Rampart's TAXII 2.1 server with the OASIS taxii2-client, as a SIEM or TIP would.

Usage: taxii-client-check.py DISCOVERY_URL ADMIN_TOKEN ROOT_CA_PEM EXPECTED_VALUE

Exits non-zero (with the reason) when the server does not behave as TAXII 2.1 says; prints a
JSON summary otherwise. Run by the server's integration tests (crates/rampart-server/tests).
"""
import json
import sys

from taxii2client.v21 import Server, as_pages

MEDIA = "application/taxii+json;version=2.1"


def check(cond, what):
    if not cond:
        print(f"TAXII check failed: {what}", file=sys.stderr)
        sys.exit(1)


def main():
    url, token, ca, expected = sys.argv[1:5]
    server = Server(url, user="rampart", password=token, verify=ca)
    check(server.title == "Rampart TAXII 2.1", f"discovery title {server.title!r}")
    check(len(server.api_roots) == 1, "one API root")
    root = server.default
    check(root is not None, "a default API root")
    check(MEDIA in root.versions, f"API root versions {root.versions!r}")
    check(len(root.collections) == 1, "one collection")
    coll = root.collections[0]
    check(coll.can_read and not coll.can_write, "read-only collection")
    check("application/stix+json;version=2.1" in coll.media_types, "STIX 2.1 media type")

    # Every object, five at a time: no repeats, and the expected indicator among them.
    objects, pages = [], 0
    for envelope in as_pages(coll.get_objects, per_request=5):
        pages += 1
        batch = envelope.get("objects", [])
        check(len(batch) <= 5, f"page of {len(batch)} objects with limit 5")
        objects.extend(batch)
    ids = [o["id"] for o in objects]
    check(len(ids) == len(set(ids)), "no object twice across pages")
    check(pages > 1, "more than one page")
    patterns = [o["pattern"] for o in objects if o["type"] == "indicator"]
    check(any(expected in p for p in patterns), f"an indicator for {expected}")
    check(all(o.get("spec_version") == "2.1" for o in objects), "spec_version 2.1")

    # The manifest lists the same objects with versions and dates.
    manifest_ids = []
    for envelope in as_pages(coll.get_manifest, per_request=7):
        for rec in envelope.get("objects", []):
            check(rec["media_type"] == "application/stix+json;version=2.1", "manifest media type")
            check(rec["date_added"].endswith("Z") and rec["version"], "manifest dates")
            manifest_ids.append(rec["id"])
    check(sorted(manifest_ids) == sorted(ids), "manifest and objects agree")

    # Filters: nothing was added after 2999; one object by id; one type.
    env = coll.get_objects(added_after="2999-01-01T00:00:00.000Z")
    check(not env.get("objects") and env.get("more") is False, "added_after in the future is empty")
    one = coll.get_object(ids[0])
    check([o["id"] for o in one["objects"]] == [ids[0]], "get_object returns that object")
    only = coll.get_objects(type="relationship")
    check(all(o["type"] == "relationship" for o in only.get("objects", [])), "match[type]")

    # Every object is STIX 2.1 as the OASIS library reads it, with no custom content, and
    # carries the TLP 2.0 marking of the feed it came from.
    import stix2

    for o in objects:
        try:
            stix2.parse(json.dumps(o), allow_custom=False)
        except Exception as e:  # the library's exception types vary by version
            check(False, f"stix2 refuses {o.get('id')}: {e}")
        check(
            any(r.startswith("marking-definition--") for r in o.get("object_marking_refs", [])),
            f"TLP marking on {o.get('id')}",
        )

    print(json.dumps({"objects": len(objects), "indicators": len(patterns), "pages": pages}))


if __name__ == "__main__":
    main()
