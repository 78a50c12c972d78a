#!/usr/bin/env bash
# Fleet scale, scenario 3 (issue #11): an enrollment storm. A fresh release gateway; one join
# token for NODES uses; NODES simulated nodes, each with a key of its own and its own source
# address, enroll over the real enrollment door, CONCURRENCY at a time. Figures: the time for all,
# the enrollment latency, exactly NODES certificates (nodes known to the gateway), the token used
# up, and one more node refused.
#   scripts/fleet-enroll.sh [--nodes 1000] [--concurrency 48]
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=1000 CONCURRENCY=48
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) NODES=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
done
# shellcheck source=lib/fleet.sh
. "$ROOT/scripts/lib/fleet.sh"
fleet_begin fleet-enroll

fleet_gateway_start "$WORK/data" || exit 1
fleet_operator "admin$$" && fleet_login "admin$$" || exit 1
TOKEN=$(fleet_token "$NODES")
"$FLEET_SIM" --gateway "127.0.0.1:$GATEWAY_PORT" --nodes "$NODES" --identities "$WORK/ids" --token "$TOKEN" \
    --enroll-only --enroll-concurrency "$CONCURRENCY" --status-interval 5s >"$WORK/sim.log" 2>&1
status=$?
enrolled=$(grep '^ENROLLED' "$WORK/sim.log")
figure "enroll: $NODES nodes, one $NODES-use token" "${enrolled#ENROLLED } (exit $status)"
figure "enroll: latency per node" "$(grep '^enrollment:' "$WORK/sim.log" | sed 's/^enrollment: //')"
certificates=$(ls "$WORK/ids" | grep -c '\.crt$')
"$TUNNEL" nodes --json >"$WORK/nodes.json"
known=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["nodes"]))' "$WORK/nodes.json")
figure "enroll: certificates received / nodes the gateway knows" "$certificates / $known"
[ "$certificates" = "$NODES" ] && [ "$known" = "$NODES" ] && pass "exactly $NODES certificates" || fail "exactly $NODES certificates"
uses=$("$TUNNEL" token ls --admin-socket "$ADMIN_SOCKET" | grep -o "[0-9]*/$NODES" | head -1)
figure "enroll: token uses" "$uses"
[ "$uses" = "$NODES/$NODES" ] && pass "the token is used up" || fail "the token is used up" "$uses"
"$FLEET_SIM" --gateway "127.0.0.1:$GATEWAY_PORT" --nodes $((NODES + 1)) --identities "$WORK/ids" --token "$TOKEN" \
    --enroll-only --status-interval 5s >"$WORK/extra.log" 2>&1
extra=$?
refusal=$(grep -m1 'error: .*enrollment of' "$WORK/extra.log" | cut -c1-160)
figure "enroll: one node more" "exit $extra: ${refusal:-no refusal seen}"
[ "$extra" != 0 ] && [ "$(ls "$WORK/ids" | grep -c '\.crt$')" = "$NODES" ] && pass "one node more is refused" || fail "one node more is refused"
[ "$status" = 0 ] && pass "every enrollment succeeded" || fail "every enrollment succeeded" "$(tail -20 "$WORK/sim.log")"
