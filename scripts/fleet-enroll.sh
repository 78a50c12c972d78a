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
WORK=$(mktemp -d /tmp/tunnel-fleet-enroll.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=lib/fleet.sh
. "$ROOT/scripts/lib/fleet.sh"
FAILED=0

fleet_build || exit 1
fleet_gateway_start "$WORK/data" || exit 1
fleet_operator "enroll$$" && fleet_login "enroll$$" || exit 1
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
[ "$certificates" = "$NODES" ] && [ "$known" = "$NODES" ] || FAILED=$((FAILED + 1))
uses=$("$TUNNEL" token ls --admin-socket "$ADMIN_SOCKET" | grep -o "[0-9]*/$NODES" | head -1)
figure "enroll: token uses" "$uses"
[ "$uses" = "$NODES/$NODES" ] || FAILED=$((FAILED + 1))
"$FLEET_SIM" --gateway "127.0.0.1:$GATEWAY_PORT" --nodes $((NODES + 1)) --identities "$WORK/ids" --token "$TOKEN" \
    --enroll-only --status-interval 5s >"$WORK/extra.log" 2>&1
extra=$?
refusal=$(grep -m1 'error: .*enrollment of' "$WORK/extra.log" | cut -c1-160)
figure "enroll: one node more" "exit $extra: ${refusal:-no refusal seen}"
[ "$extra" != 0 ] && [ "$(ls "$WORK/ids" | grep -c '\.crt$')" = "$NODES" ] || FAILED=$((FAILED + 1))
[ "$status" = 0 ] || FAILED=$((FAILED + 1))
echo "$([ "$FAILED" = 0 ] && echo 1 || echo 0) passed, $FAILED failed"
exit $((FAILED > 0))
