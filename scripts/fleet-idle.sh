#!/usr/bin/env bash
# Fleet scale, scenario 1 (issue #11): NODES simulated nodes connected to a release gateway on
# loopback and left idle. Figures: time until all are online, the gateway's RSS per idle node
# (its RSS with the fleet minus its RSS before any node connected, over NODES), its CPU over
# 60 idle seconds, and how long an admin's `tunnel nodes` takes (3 runs).
#   scripts/fleet-idle.sh [--nodes 10000] [--connect-rate 500]
# The nodes first dial at CONNECT-RATE a second (0: all at once). All at once, 10,000 fresh dials
# overrun the gateway's pending-handshake cap, whose eviction then ends every handshake before it
# completes (docs/BENCHMARKS.md, "Fleet scale"); this scenario measures the connected fleet.
# The fleet's gateway data and identities are kept in $FLEET_DIR/nNODES (scripts/lib/fleet.sh).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=10000 CONNECT_RATE=500
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) NODES=$2; shift 2 ;;
        --connect-rate) CONNECT_RATE=$2; shift 2 ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
done
# shellcheck source=lib/fleet.sh
. "$ROOT/scripts/lib/fleet.sh"
fleet_begin fleet-idle

fleet_prepare "$NODES"
sleep 5    # let the fresh gateway settle before its empty size is read
EMPTY_RSS=$(rss_kib "$GATEWAY_PID")
EMPTY_ANON=$(anon_kib "$GATEWAY_PID")
figure "idle: gateway RSS with no node" "$((EMPTY_RSS / 1024)) MiB"

fleet_sim "$WORK/sim.log" --nodes "$NODES" --identities "$FLEET_HOME/ids" "${TOKEN_ARGS[@]}" --connect-rate "$CONNECT_RATE" --status-interval 5s
wait_for_line "$WORK/sim.log" "^ONLINE" 1800 "$SIM_PID" || { tail -20 "$WORK/sim.log"; exit 1; }
grep '^ENROLLED' "$WORK/sim.log"
online=$(grep -m1 '^ONLINE' "$WORK/sim.log")
figure "idle: $NODES nodes online after start" "${online#ONLINE }"
sleep 15   # the connect storm's last handshakes and announcements are done
FULL_RSS=$(rss_kib "$GATEWAY_PID")
figure "idle: gateway RSS with $NODES idle nodes" "$((FULL_RSS / 1024)) MiB"
figure "idle: gateway RSS per idle node" "$(((FULL_RSS - EMPTY_RSS) / NODES)) KiB"
# Of which anonymous memory (heap, stacks): what the nodes cost, apart from the code and
# library pages their connects touched first.
figure "idle: gateway anonymous memory per idle node" "$((($(anon_kib "$GATEWAY_PID") - EMPTY_ANON) / NODES)) KiB"
ticks_before=$(cpu_ticks "$GATEWAY_PID")
sleep 60
ticks_after=$(cpu_ticks "$GATEWAY_PID")
figure "idle: gateway CPU over 60 s idle" "$(awk -v t=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f %% of one core", t / hz / 60 * 100 }')"
for run in 1 2 3; do
    read -r seconds status < <(seconds_of "$TUNNEL" nodes)
    listed=$(grep -c ' online ' "$WORK/last.out")
    figure "idle: tunnel nodes, run $run" "$seconds s (exit $status, $listed online rows)"
done
kill -TERM "$SIM_PID"
wait "$SIM_PID"
