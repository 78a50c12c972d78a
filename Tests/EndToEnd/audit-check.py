#!/usr/bin/env python3
"""Checks a gateway's audit log against an end-to-end scenario's own ground truth.

    audit-check.py AUDIT_DIR AFTER_SEQ EXPECTED_FILE

EXPECTED_FILE has one line per action the scenario took after record AFTER_SEQ:
    open OPERATOR NODE SERVICE            a stream that was admitted
    deny OPERATOR NODE SERVICE OUTCOME    a stream that was refused (denied, unavailable)
    event TYPE KEY=VALUE                  a record of TYPE with that field
Each action must appear as often as it is listed (once per line), with every field filled; every admitted stream must have
exactly one close record, with bytes and a duration. Across the whole log, no stream may have
more than one close. Prints one line per problem; exits 1 if there is any.
"""
import collections
import glob
import json
import os
import sys

directory, after, expected_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
records = []
for path in sorted(glob.glob(os.path.join(directory, "audit-*.jsonl"))):
    with open(path, encoding="utf-8") as handle:
        records += [json.loads(line) for line in handle if line.strip()]

problems = []
closes = collections.Counter(r["stream"] for r in records if r["type"] == "stream_close")
for stream, count in closes.items():
    if count != 1:
        problems.append(f"stream {stream} has {count} close records")
opens = {r["stream"] for r in records if r["type"] == "stream_open"}
for stream in opens - set(closes):
    problems.append(f"stream {stream} was opened and never closed")

recent = [r for r in records if r["seq"] > after]
open_fields = ["time", "seq", "prev", "operator", "operator_subject", "operator_serial", "roles", "node", "service",
               "source", "session", "stream", "policy_version", "rule"]
close_fields = ["stream", "outcome", "bytes_to_node", "bytes_from_node", "duration_ms"]
seen = collections.Counter()
for r in recent:
    if r["type"] == "stream_open":
        seen[("open", r["operator"], r["node"], r["service"])] += 1
        problems += [f"stream_open seq {r['seq']} lacks {f}" for f in open_fields if r.get(f) in (None, "", [])]
        close = [c for c in records if c["type"] == "stream_close" and c["stream"] == r["stream"]]
        problems += [f"stream_close of {r['stream']} lacks {f}" for c in close for f in close_fields if c.get(f) is None]
    elif r["type"] == "stream_deny":
        seen[("deny", r["operator"], r["node"], r["service"], r["outcome"])] += 1
        problems += [f"stream_deny seq {r['seq']} lacks {f}" for f in ["operator", "node", "service", "reason", "source", "session"] if not r.get(f)]

# An ssh session that ends by logging out closes as "closed", never "reset" (docs/TUNNEL.md §4).
for r in recent:
    if r["type"] == "stream_close" and r.get("service") == "ssh" and r.get("outcome") == "reset":
        problems.append(f"ssh stream {r['stream']} closed as reset ({r.get('reason')}); a logout is a clean close")

expected = collections.Counter()
events = collections.Counter()
with open(expected_file, encoding="utf-8") as handle:
    for line in handle:
        words = line.split()
        if not words:
            continue
        if words[0] == "event":
            events[(words[1], words[2])] += 1
            continue
        expected[tuple(words)] += 1
for (kind, pair), count in events.items():
    key, _, value = pair.partition("=")
    found = sum(1 for r in recent if r["type"] == kind and str(r.get(key)) == value)
    if found != count:
        problems.append(f"expected {count} {kind} record(s) with {key}={value}, found {found}")
for key in set(expected) | set(seen):
    if expected[key] != seen[key]:
        problems.append(f"expected {expected[key]} record(s) of {' '.join(key)}, found {seen[key]}")

for problem in problems:
    print(problem)
print(f"{len(recent)} records after seq {after} checked, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
