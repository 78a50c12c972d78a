#!/usr/bin/env bash
# An anonymous flood against `tunnel gateway` on loopback while an admin works (issue #9's
# done-when figure). At once, from loopback addresses other than the admin's 127.0.0.1:
#   - HALF_OPEN TCP connections that never send a byte (reopened when the gateway drops them),
#   - IDLE_ENROLL enrollment sessions that complete TLS, send HELLO and then nothing,
#   - REDEEM_THREADS threads redeeming a made-up token at full speed,
#   - OPERATOR_CLAIMS connections (none unless asked) whose ClientHello offers the operator
#     protocol, as an admin's does, and that then stall, each from its own address,
# and meanwhile, every second, an admin's `tunnel nodes` and a new stream (`tunnel proxy NODE
# echo` carrying one line through an echo service on the node). Reported: each admin
# operation's time (median, max, failures), the gateway's RSS before and at its peak, and the
# audit log's growth per flooding source per minute.
#
#   scripts/bench-hostile.sh [--quick] [--check] [--seconds S] [--half-open N] [--idle-enroll N]
#                            [--redeem-threads N] [--operator-claims N] [--tunnel PATH] [--keep]
#     --quick       smaller flood (500 half-open, 100 idle sessions, 2 redeem threads, 100
#                   operator claims, 20 s)
#     --check       for the end-to-end suite: fail unless every admin operation succeeded and
#                   the audit log holds summaries, not one record per refusal (no timing asserted)
#     --seconds S   how long the flood runs (default 60)
#     --half-open N, --idle-enroll N, --redeem-threads N, --operator-claims N
#                   one part of the flood at another size
#     --tunnel PATH the binary (default .build/release/tunnel)
# Needs python3. Raises `ulimit -n` for itself and its children.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/e2e.sh
. "$ROOT/scripts/lib/e2e.sh"
HALF_OPEN=5000 IDLE_ENROLL=1000 REDEEM_THREADS=4 OPERATOR_CLAIMS=0 SECONDS_FLOOD=60 CHECK=0 TUNNEL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) HALF_OPEN=500; IDLE_ENROLL=100; REDEEM_THREADS=2; OPERATOR_CLAIMS=100; SECONDS_FLOOD=20 ;;
        --check) CHECK=1 ;;
        --seconds) SECONDS_FLOOD=$2; shift ;;
        --half-open) HALF_OPEN=$2; shift ;;
        --idle-enroll) IDLE_ENROLL=$2; shift ;;
        --redeem-threads) REDEEM_THREADS=$2; shift ;;
        --operator-claims) OPERATOR_CLAIMS=$2; shift ;;
        --tunnel) TUNNEL=$2; shift ;;
        --keep) KEEP_WORK=1 ;;
        -h|--help) usage_from_header; exit 0 ;;
        *) echo "bench-hostile: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
e2e_begin bench-hostile "${TUNNEL:-$ROOT/.build/release/tunnel}" python3
# Half-open sockets, idle sessions and the gateway's own descriptors, with room to spare.
ulimit -n "$(( HALF_OPEN + 2 * IDLE_ENROLL + OPERATOR_CLAIMS + 4096 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- a gateway, an admin, a node offering an echo service ------------------------------------------
start_echo_server
bench_gateway
bench_operator
bench_node node-1 "$WORK/client.log" "echo=127.0.0.1:$ECHO_PORT"

rss_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$GATEWAY_PID/status"; }
audit_bytes() { cat "$WORK"/data/audit/*.jsonl 2>/dev/null | wc -c; }

# One admin round: `tunnel nodes`, then a new stream. Prints "nodes_ms stream_ms", -1 for a failure.
admin_round() {
    local t0 t1 t2 nodes_ms stream_ms
    t0=$(date +%s%N)
    if timeout 10 "$TUNNEL" nodes >"$WORK/nodes.out" 2>&1 && grep -q node-1 "$WORK/nodes.out"; then t1=$(date +%s%N); nodes_ms=$(( (t1 - t0) / 1000000 )); else t1=$(date +%s%N); nodes_ms=-1; fi
    if [ "$(echo hostile-check | timeout 10 "$TUNNEL" proxy node-1 echo 2>"$WORK/proxy.err" | head -n 1)" = hostile-check ]; then
        t2=$(date +%s%N); stream_ms=$(( (t2 - t1) / 1000000 ))
    else
        stream_ms=-1
    fi
    echo "$nodes_ms $stream_ms"
}

note "baseline: 5 admin rounds with no flood"
for _ in 1 2 3 4 5; do admin_round; done >"$WORK/baseline.txt"
RSS_BEFORE=$(rss_kib VmRSS)
AUDIT_BEFORE=$(audit_bytes)

note "flood: $HALF_OPEN half-open, $IDLE_ENROLL idle enrollment sessions, $REDEEM_THREADS redeem threads, $OPERATOR_CLAIMS operator claims, ${SECONDS_FLOOD}s"
# A process per part, so the parts do not wait for each other on one Python interpreter.
FLOOD_PIDS=()
PARTS=("--half-open $HALF_OPEN" "--idle-enroll $IDLE_ENROLL" "--redeem-threads $REDEEM_THREADS")
[ "$OPERATOR_CLAIMS" -gt 0 ] && PARTS+=("--operator-claims $OPERATOR_CLAIMS")
for part in "${PARTS[@]}"; do
    # shellcheck disable=SC2086
    start "$WORK/flood-${part%% *}.log" python3 "$ROOT/scripts/lib/hostile_flood.py" "$GATEWAY_PORT" "$SECONDS_FLOOD" $part
    FLOOD_PIDS+=("$LAST_PID")
done
FLOOD_START=$(date +%s)
RSS_PEAK=$RSS_BEFORE
: >"$WORK/flood.txt"
# Admin rounds and RSS samples for as long as the flood runs (bounded by its own deadline).
flooding() { local pid; for pid in "${FLOOD_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
while flooding && [ $(( $(date +%s) - FLOOD_START )) -le $(( SECONDS_FLOOD + 30 )) ]; do
    admin_round >>"$WORK/flood.txt"
    rss=$(rss_kib VmRSS); [ "${rss:-0}" -gt "$RSS_PEAK" ] && RSS_PEAK=$rss
    sleep 1
done
for pid in "${FLOOD_PIDS[@]}"; do wait "$pid"; done
FLOOD_END=$(date +%s)
kill -0 "$GATEWAY_PID" 2>/dev/null || die "the gateway died under the flood" "$WORK/gateway.log"
# The refusal summaries of the last interval are written at shutdown: stop the gateway cleanly.
HWM=$(rss_kib VmHWM)
kill -TERM "$GATEWAY_PID"
timeout 40 tail --pid="$GATEWAY_PID" -f /dev/null
AUDIT_AFTER=$(audit_bytes)

python3 - "$WORK" "$RSS_BEFORE" "$RSS_PEAK" "$HWM" "$AUDIT_BEFORE" "$AUDIT_AFTER" "$(( FLOOD_END - FLOOD_START ))" "$CHECK" <<'PY'
import glob, json, statistics, sys
work, rss_before, rss_peak, hwm, audit_before, audit_after, seconds, check = sys.argv[1:]
rss_before, rss_peak, hwm = int(rss_before), int(rss_peak), int(hwm)
audit_growth, seconds = int(audit_after) - int(audit_before), max(1, int(seconds))
flood = {}
for name in glob.glob(work + "/flood-*.log"):
    for key, value in json.loads(open(name).read().strip().splitlines()[-1]).items():
        flood[key] = flood.get(key, 0) + value
lines = [line for name in sorted(glob.glob(work + "/data/audit/*.jsonl")) for line in open(name)]
records = [json.loads(line) for line in lines]
# The flood's share of the log: its summaries (the rest is the admin's own streams and checkpoints).
flood_bytes = sum(len(line.encode()) for line, r in zip(lines, records) if r["type"] in ("enroll_refused", "stream_summary"))
summaries = [r for r in records if r["type"] == "enroll_refused"]
single = [r for r in records if r["type"] in ("enroll", "reenroll") and r.get("outcome") != "ok"]
sources = len({r["source"] for r in summaries}) or 1
refused = sum(int(v) for r in summaries for v in r["counts"].values())
def rounds(name):
    rows = [tuple(map(int, line.split())) for line in open(work + "/" + name) if line.strip()]
    out = {}
    for index, label in ((0, "tunnel nodes"), (1, "new stream")):
        ok = [row[index] for row in rows if row[index] >= 0]
        out[label] = (len(rows) - len(ok), len(rows), statistics.median(ok) if ok else None, max(ok) if ok else None)
    return out
base, under = rounds("baseline.txt"), rounds("flood.txt")
print("flood (counts from the flooding side): " + json.dumps(flood))
print("| admin operation | no flood: median ms | under flood: median ms | under flood: max ms | failures under flood |")
print("|---|---|---|---|---|")
for label in ("tunnel nodes", "new stream"):
    failed, total, median, worst = under[label]
    print("| %s | %s | %s | %s | %d of %d |" % (label, base[label][2], median, worst, failed, total))
print("| gateway RSS | %.1f MiB before | %.1f MiB peak sampled (VmHWM %.1f MiB) | growth %.1f MiB | |" % (
    rss_before / 1024, rss_peak / 1024, hwm / 1024, (max(rss_peak, hwm) - rss_before) / 1024))
print("| audit log | %d bytes in %d s (with the admin's own records) | flood's summaries: %d bytes, %.0f bytes per source per minute (%d sources) | %d refusals summed in %d records | %d single refusal records |" % (
    audit_growth, seconds, flood_bytes, flood_bytes / sources / (seconds / 60), sources, refused, len(summaries), len(single)))
if check == "1":
    problems = []
    for label in ("tunnel nodes", "new stream"):
        if under[label][0] or not under[label][1]:
            problems.append("%s failed %d of %d times under the flood" % (label, under[label][0], under[label][1]))
    if single:
        problems.append("%d refusals were audited one by one" % len(single))
    if not summaries:
        problems.append("no enroll_refused summary in the audit log")
    if flood["half_open_made"] == 0 or flood["enroll_sessions_made"] == 0 or flood["redeems_sent"] == 0:
        problems.append("the flood did not run: %s" % flood)
    for problem in problems:
        print("FAIL: " + problem)
    sys.exit(1 if problems else 0)
PY
