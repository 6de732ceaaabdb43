#!/usr/bin/env python3
"""Polls Rampart's TAXII 2.1 collection as a SIEM does, while indicators arrive and change.

Usage: taxii-poll-check.py DISCOVERY_URL ADMIN_TOKEN ROOT_CA_PEM

A poller keeps one cursor: the `X-TAXII-Date-Added-Last` of its last response, sent back as
`added_after`. This script adds an indicator, polls, adds another in the same second as that
poll's cursor, polls again, and updates an indicator it already holds (a second feed reports
it), over several rounds; every addition and every update must arrive exactly once. Then it
reads the collection through stix2's TAXIICollectionSource (current versions, all versions, a
query) and checks `limit`, its cap and the versions endpoint with taxii2-client.

Exits non-zero (with the reason) on any failure; prints a JSON summary otherwise. Run by the
server's integration tests (crates/rampart-server/tests).
"""
import json
import sys
import time

import requests
from taxii2client.v21 import Server, as_pages

ROUNDS = 5


def check(cond, what):
    if not cond:
        print(f"TAXII poll check failed: {what}", file=sys.stderr)
        sys.exit(1)


class Admin:
    """The Rampart admin API, for adding indicators between polls."""

    def __init__(self, base, token, ca):
        self.base, self.ca = base, ca
        self.headers = {"Authorization": f"Bearer {token}"}

    def feed(self, name):
        r = requests.post(
            f"{self.base}/api/v1/intel/feeds",
            json={"name": name, "format": "plain", "reliability": 80},
            headers=self.headers,
            verify=self.ca,
        )
        check(r.status_code == 201, f"create feed {name}: {r.status_code} {r.text}")

    def upload(self, feed, values):
        r = requests.post(
            f"{self.base}/api/v1/intel/feeds/{feed}/upload",
            data="\n".join(values) + "\n",
            headers=self.headers,
            verify=self.ca,
        )
        check(r.status_code == 200, f"upload to {feed}: {r.status_code} {r.text}")


class Poller:
    """One TAXII client with one cursor, as a SIEM keeps it."""

    def __init__(self, coll):
        self.coll = coll
        self.cursor = None
        self.last_headers = {}
        coll._conn.session.hooks["response"].append(self._record)

    def _record(self, response, *args, **kwargs):
        self.last_headers = response.headers

    def poll(self, per_request=1000):
        """Every object added after the cursor, page by page; advances the cursor."""
        objects = []
        kwargs = {"added_after": self.cursor} if self.cursor else {}
        for envelope in as_pages(self.coll.get_objects, per_request=per_request, **kwargs):
            objects.extend(envelope.get("objects", []))
            last = self.last_headers.get("X-TAXII-Date-Added-Last")
            if last:
                self.cursor = last
        return objects


def indicator_for(objects, value):
    return [o for o in objects if o["type"] == "indicator" and f"'{value}'" in o["pattern"]]


def stamp_second(date_added):
    return date_added.split(".")[0]


def main():
    url, token, ca = sys.argv[1:4]
    base = url.split("/taxii2/")[0]
    admin = Admin(base, token, ca)
    admin.feed("poll-a")
    admin.feed("poll-b")

    server = Server(url, user="rampart", password=token, verify=ca)
    coll = server.default.collections[0]
    poller = Poller(coll)
    poller.poll()
    seen_versions = {}
    same_second = 0
    for r in range(ROUNDS):
        first, second = f"45.77.{r}.10", f"poll-{r}.evil-example.cy"
        # Start at the top of a second, so the poll and the next addition share it.
        time.sleep(1.0 - time.time() % 1.0 + 0.02)
        admin.upload("poll-a", [first])
        got = poller.poll()
        check(len(indicator_for(got, first)) == 1, f"round {r}: {first} arrives once, got {got}")
        cursor_after_first = poller.cursor
        admin.upload("poll-a", [second])
        got = poller.poll()
        found = indicator_for(got, second)
        check(len(found) == 1, f"round {r}: {second}, added right after a poll, arrives once")
        check(not indicator_for(got, first), f"round {r}: {first} is not sent twice")
        if stamp_second(cursor_after_first) == stamp_second(poller.cursor):
            same_second += 1
        seen_versions[found[0]["id"]] = found[0]["modified"]
        # An update: another feed reports the first value; a poll sees the new version.
        admin.upload("poll-b", [first])
        got = poller.poll()
        updated = indicator_for(got, first)
        check(len(updated) == 1, f"round {r}: the update of {first} arrives once")
        check("poll-b" in updated[0]["description"], f"round {r}: the update names its new feed")
        seen_versions[updated[0]["id"]] = updated[0]["modified"]
        # Nothing happened since: an empty poll, and the cursor stays.
        cursor = poller.cursor
        check(poller.poll() == [], f"round {r}: nothing new, nothing sent")
        check(poller.cursor == cursor, "an empty poll keeps the cursor")
    check(same_second >= 1, "at least one addition landed in the same second as a poll")

    # stix2's data source over the collection: current versions, with the updates.
    import stix2

    src = stix2.TAXIICollectionSource(coll)
    for obj_id, modified in seen_versions.items():
        obj = src.get(obj_id)
        check(obj is not None, f"TAXIICollectionSource.get({obj_id})")
        polled = stix2.utils.parse_into_datetime(modified)
        check(
            obj.modified == polled,
            f"{obj_id}: the current version {obj.modified} is the one polled ({modified})",
        )
        versions = src.all_versions(obj_id)
        check(len(versions) == 1, f"all_versions({obj_id}): Rampart keeps the current one")
    indicators = src.query([stix2.Filter("type", "=", "indicator")])
    values = [f"45.77.{r}.10" for r in range(ROUNDS)]
    for v in values:
        check(
            sum(f"'{v}'" in i.pattern for i in indicators) == 1,
            f"query finds {v} once",
        )

    # limit: exactly that many objects; above the maximum it is capped, not refused.
    one = coll.get_objects(limit=1)
    check(len(one.get("objects", [])) == 1 and one["more"] is True, "limit=1 gives one object")
    capped = coll.get_objects(limit=1_000_000)
    check(0 < len(capped.get("objects", [])) <= 10_000, "a limit above the maximum is capped")

    # The versions endpoint lists the current version.
    some_id = next(iter(seen_versions))
    versions = coll.object_versions(some_id)
    check(versions.get("versions") == [seen_versions[some_id]], f"versions of {some_id}: {versions}")

    print(json.dumps({"rounds": ROUNDS, "same_second": same_second, "updated": len(seen_versions)}))


if __name__ == "__main__":
    main()
