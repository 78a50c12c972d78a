#!/usr/bin/env python3
"""Checks a gateway's audit log and node list against what the fleet simulator saw.

    fleet-audit-check.py audit AUDIT_DIR AFTER_SEQ REPORT_JSON NODE_STATE OPERATOR...
    fleet-audit-check.py nodes NODES_JSON NODE_STATE

audit: among the records after AFTER_SEQ, for the simulator's operators and nodes: every
stream_open has exactly one stream_close; the closes with outcome `closed` are exactly the
streams the simulator completed; opens plus denials are exactly the streams it opened; each
node has as many node_connect records as the simulator counted sessions for it, and as many
node_disconnect records (the simulator has disconnected every node when this runs).

nodes: `tunnel nodes --json`, taken while the simulator lingers with every node connected, lists
each simulated node online, with lastSeen within 2 s of the simulator's last connect.

Prints one line per problem (at most 20 of a kind) and a summary; exits 1 if there is any.
"""
import collections
import glob
import json
import os
import sys


def read_state(path):
    """name -> (online, sessions, flaps, last_connect, last_disconnect)"""
    state = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, online, sessions, flaps, connect, disconnect = line.split()
            state[name] = (online == "online", int(sessions), int(flaps), float(connect), float(disconnect))
    return state


def report_problems(problems):
    kinds = collections.Counter(p.split(":")[0] for p in problems)
    shown = collections.Counter()
    for problem in problems:
        kind = problem.split(":")[0]
        shown[kind] += 1
        if shown[kind] <= 20:
            print("PROBLEM", problem)
    for kind, count in kinds.items():
        if count > 20:
            print(f"PROBLEM {kind}: {count - 20} more")


def check_audit(directory, after, report_path, state_path, operators):
    records = []
    for path in sorted(glob.glob(os.path.join(directory, "audit-*.jsonl"))):
        with open(path, encoding="utf-8") as handle:
            records += [json.loads(line) for line in handle if line.strip()]
    records = [r for r in records if r.get("seq", 0) > after]
    report = json.load(open(report_path, encoding="utf-8"))
    state = read_state(state_path)
    ours = set(operators)
    problems = []
    opens = {r["stream"]: r for r in records if r["type"] == "stream_open" and r.get("operator") in ours}
    denies = [r for r in records if r["type"] == "stream_deny" and r.get("operator") in ours]
    closes = collections.defaultdict(list)
    for r in records:
        if r["type"] == "stream_close" and r.get("operator") in ours:
            closes[r["stream"]].append(r)
    for stream in opens:
        if len(closes.get(stream, [])) != 1:
            problems.append(f"stream close count: {stream} has {len(closes.get(stream, []))} close records")
    for stream in closes:
        if stream not in opens:
            problems.append(f"close without open: {stream}")
    clean = sum(1 for s in opens if closes.get(s) and closes[s][0].get("outcome") == "closed")
    if clean != report["streams_completed"]:
        problems.append(f"completed streams: the audit has {clean} closed cleanly, the simulator completed {report['streams_completed']}")
    if len(opens) + len(denies) != report["streams_opened"]:
        problems.append(f"stream records: {len(opens)} opens + {len(denies)} denials, the simulator opened {report['streams_opened']}"
                        f" (ended with a reason: {report['streams_ended_with_reason']})")
    connects = collections.Counter(r.get("node") for r in records if r["type"] == "node_connect")
    disconnects = collections.Counter(r.get("node") for r in records if r["type"] == "node_disconnect")
    for name, (_, sessions, _, _, _) in state.items():
        if connects[name] != sessions:
            problems.append(f"node_connect count: {name} has {connects[name]}, the simulator counted {sessions} sessions")
        if disconnects[name] != connects[name]:
            problems.append(f"node_disconnect count: {name} has {disconnects[name]} for {connects[name]} connects")
    report_problems(problems)
    print(f"audit: {len(opens)} stream opens, {len(denies)} denials, {clean} closed cleanly, "
          f"{sum(connects[n] for n in state)} node connects for {len(state)} nodes: {len(problems)} problems")
    return not problems


def check_nodes(nodes_path, state_path):
    listed = {n["name"]: n for n in json.load(open(nodes_path, encoding="utf-8"))["nodes"]}
    state = read_state(state_path)
    problems = []
    for name, (online, _, _, last_connect, _) in state.items():
        row = listed.get(name)
        if row is None:
            problems.append(f"node missing: {name} is not in tunnel nodes")
            continue
        if row["online"] != online:
            problems.append(f"node online: {name} is {'online' if row['online'] else 'offline'} in tunnel nodes, "
                            f"{'online' if online else 'offline'} in the simulator")
        seen = row.get("lastSeen")
        if seen is None or abs(seen - last_connect) > 2:
            problems.append(f"node lastSeen: {name} lastSeen {seen}, the simulator connected at {last_connect:.0f}")
    report_problems(problems)
    print(f"node list: {len(state)} nodes compared: {len(problems)} problems")
    return not problems


if __name__ == "__main__":
    if sys.argv[1] == "audit":
        ok = check_audit(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        ok = check_nodes(sys.argv[2], sys.argv[3])
    sys.exit(0 if ok else 1)
