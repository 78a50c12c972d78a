#!/usr/bin/env bash
# Fleet scale, scenarios 4 and 5 (issue #11): a soak with churn. A release gateway on loopback,
# NODES simulated nodes (Benchmarks/FleetSim), OPERATORS operators each keeping STREAMS checked
# echo/sink streams of mixed sizes open for MINUTES, CHURN of the nodes dropped every minute.
# Then: no byte wrong or lost (the simulator's exit status), every stream one open and one close
# in the audit and the counts exact (scripts/lib/fleet-audit-check.py), `tunnel audit verify`
# passes, `tunnel nodes` lists every node online with the right lastSeen, and the gateway's RSS
# sampled every 5 s: idle, at 5 minutes, at the end, and AFTER seconds after the load stopped
# (60; 5 with --ci), which must be back within 10 % of idle.
#   scripts/fleet-soak.sh [--nodes 1000] [--operators 20] [--streams 10] [--minutes 30] [--churn 0.1]
#                         [--sizes 1K:50,64K:30,1M:15,16M:5] [--after 60] [--ci]
# --ci: the 2-minute version scripts/test.sh runs (200 nodes, churn on, a fresh fleet directory,
# FLEET_TUNNEL and FLEET_SIM_CONFIG as in scripts/lib/fleet.sh). Exits non-zero on any failed check.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=1000 OPERATORS=20 STREAMS=10 MINUTES=30 CHURN=0 SIZES=1K:50,64K:30,1M:15,16M:5 CI_MODE=
IDLE_SECONDS=20 AFTER_SECONDS=60
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) NODES=$2; shift 2 ;;
        --operators) OPERATORS=$2; shift 2 ;;
        --streams) STREAMS=$2; shift 2 ;;
        --minutes) MINUTES=$2; shift 2 ;;
        --churn) CHURN=$2; shift 2 ;;
        --sizes) SIZES=$2; shift 2 ;;
        --after) AFTER_SECONDS=$2; shift 2 ;;
        --ci) CI_MODE=1 NODES=200 OPERATORS=4 STREAMS=5 MINUTES=2 CHURN=0.1 SIZES=1K:50,64K:30,1M:15,4M:5 IDLE_SECONDS=4 AFTER_SECONDS=5; shift ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
done

# shellcheck source=lib/fleet.sh
. "$ROOT/scripts/lib/fleet.sh"
fleet_begin fleet-soak

[ -n "$CI_MODE" ] && FLEET_DIR=$WORK/fleet
# Operators open streams as fast as they finish: the per-operator record budget is not what this measures.
fleet_prepare "$NODES" --stream-records-per-operator-per-minute 1000000
OPERATOR_NAMES=()
BUNDLES=()
for number in $(seq 1 "$OPERATORS"); do
    name="soak$$-$number"
    fleet_operator "$name" || exit 1
    OPERATOR_NAMES+=("$name")
    BUNDLES+=(--operator-bundle "$WORK/$name.yaml")
done
AFTER_SEQ=$(python3 -c '
import glob, json, sys
last = 0
for path in sorted(glob.glob(sys.argv[1] + "/audit-*.jsonl")):
    for line in open(path):
        if line.strip(): last = max(last, json.loads(line)["seq"])
print(last)' "$GATEWAY_DATA/audit")

fleet_sim "$WORK/sim.log" --nodes "$NODES" --identities "$FLEET_HOME/ids" "${TOKEN_ARGS[@]}" "${BUNDLES[@]}" \
    --streams-per-operator "$STREAMS" --sizes "$SIZES" --duration "${MINUTES}m" --flap-fraction "$CHURN" --flap-interval 60s \
    --load-delay "${IDLE_SECONDS}s" --linger "$((AFTER_SECONDS + 10))s" --report "$WORK/report.json" --node-state "$WORK/nodes.state" --status-interval 10s
wait_for_line "$WORK/sim.log" "^IDLE" 900 "$SIM_PID" || { tail -30 "$WORK/sim.log"; exit 1; }
sleep $((IDLE_SECONDS / 2))    # the fleet is online and idle: sample the gateway's resting size
IDLE_RSS=$(rss_kib "$GATEWAY_PID") IDLE_ANON=$(anon_kib "$GATEWAY_PID")
figure "soak: gateway RSS idle with $NODES nodes" "$((IDLE_RSS / 1024)) MiB"
# RSS every 5 s while the load runs and after it.
( while kill -0 "$GATEWAY_PID" 2>/dev/null && kill -0 "$SIM_PID" 2>/dev/null; do
      echo "$(date +%s) $(rss_kib "$GATEWAY_PID")"; sleep 5
  done ) >"$WORK/rss.tsv" &
PIDS+=($!)
LOAD_START=$(date +%s)

wait_for_line "$WORK/sim.log" "^LINGER" $((MINUTES * 60 + 600)) "$SIM_PID" || fail "the simulator reached its report" "$(tail -20 "$WORK/sim.log")"
LOAD_END=$(date +%s)
"$TUNNEL" nodes --json >"$WORK/nodes.json" 2>"$WORK/nodes.err" || fail "tunnel nodes: $(cat "$WORK/nodes.err")"
python3 "$ROOT/scripts/lib/fleet-audit-check.py" nodes "$WORK/nodes.json" "$WORK/nodes.state" || fail "the node list matches the simulator"
sleep "$AFTER_SECONDS"
AFTER_RSS=$(rss_kib "$GATEWAY_PID") AFTER_ANON=$(anon_kib "$GATEWAY_PID")
wait "$SIM_PID"; SIM_STATUS=$?
sed -n '/^fleet-sim:/,$p' "$WORK/sim.log"
[ "$SIM_STATUS" = 0 ] || fail "the simulator found wrong bytes or lost streams (exit $SIM_STATUS)"
# Every node said goodbye; a graceful stop lets the gateway write the last disconnect records.
kill -TERM "$GATEWAY_PID"
wait "$GATEWAY_PID"
python3 "$ROOT/scripts/lib/fleet-audit-check.py" audit "$GATEWAY_DATA/audit" "$AFTER_SEQ" "$WORK/report.json" "$WORK/nodes.state" \
    "${OPERATOR_NAMES[@]}" || fail "the audit matches the simulator"
"$TUNNEL" audit verify "$GATEWAY_DATA/audit" >"$WORK/verify.out" 2>&1 || fail "tunnel audit verify: $(tail -3 "$WORK/verify.out")"

python3 - "$WORK/rss.tsv" "$LOAD_START" "$LOAD_END" "$IDLE_RSS" "$AFTER_RSS" "$WORK/report.json" "$AFTER_SECONDS" \
    "$((OPERATORS * STREAMS))" <<'PY' | while read -r line; do figure "${line%%=*}" "${line#*=}"; done
import json, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 2]
start, end, idle, after = map(int, sys.argv[2:6])
report = json.load(open(sys.argv[6]))
during = [r for t, r in rows if start <= t <= end]
five = [r for t, r in rows if start + 300 <= t <= end]
mib = lambda k: f"{k / 1024:.0f} MiB"
print(f"soak: streams completed={report['streams_completed']} ({report['bytes_verified'] / 1e9:.2f} GB verified, {report['verified_mb_per_s']:.0f} MB/s)")
print(f"soak: bytes wrong / streams lost={report['bytes_wrong']} / {report['streams_lost']}")
print(f"soak: node flaps={report['flaps']}")
# What the relayed streams may hold (RelaySizing, docs/TUNNEL.md 4): each stream's 64 KiB initial
# window and 16 KiB send buffer both ways, plus the gateway's 16 MiB budget for window growth.
bound = int(sys.argv[8]) * 2 * (64 + 16) + 16 * 1024
if during:
    peak = max(during) - idle
    print(f"soak: gateway RSS peak under load={mib(max(during))} (+{mib(peak)} over idle)")
    verdict = "within" if peak <= bound else f"over by {mib(peak - bound)}"
    print(f"soak: window bound for {sys.argv[8]} streams=+{mib(bound)} over idle; the peak is {verdict}")
if five:
    print(f"soak: gateway RSS after 5 min, first / last / max={mib(five[0])} / {mib(five[-1])} / {mib(max(five))}")
print(f"soak: gateway RSS {sys.argv[7]} s after the load={mib(after)} ({(after - idle) * 100 / idle:+.0f} % of idle)")
PY
figure "soak: gateway anonymous memory idle / after" "$((IDLE_ANON / 1024)) / $((AFTER_ANON / 1024)) MiB"
# Issue #11: back within 10 % of idle once the load has stopped (the heap trimmed, the quiet
# connections' TLS buffers given back).
[ $((AFTER_RSS * 10)) -le $((IDLE_RSS * 11)) ] || fail "gateway RSS back within 10 % of idle $AFTER_SECONDS s after the load" \
    "$((IDLE_RSS / 1024)) MiB idle, $((AFTER_RSS / 1024)) MiB after"
[ "$FAILED" = 0 ] && pass "fleet soak: no byte wrong or lost, audit and node list exact"
