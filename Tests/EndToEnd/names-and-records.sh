#!/usr/bin/env bash
# End to end (issue #9, names, labels and records): the built `tunnel` binary as gateway, node
# client and operator CLI on loopback. A node cannot choose its own labels and an admin can; a
# Kelvin-sign alias of a node name is refused, not routed; a node killed with SIGKILL under a
# stream closes it in the audit as node_connection_lost; and a gateway killed with SIGKILL three
# times leaves every record up to its last start signed. Every process is ended by PID.
#   Tests/EndToEnd/names-and-records.sh [path/to/tunnel]      (default: .build/debug/tunnel)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin names-and-records "${1:-}"

GATEWAY_PORT=$(free_port)
HOLD_PORT=$(free_port)
ADMIN=(--admin-socket "$WORK/data/admin.sock")
AUDIT="$WORK/data/audit"
start_gateway() {
    start "$WORK/gateway.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data"
    GATEWAY_PID=$LAST_PID
    wait_for_line "$WORK/gateway.log" "admin socket open" 15 "$GATEWAY_PID" || fail "gateway started" "$(cat "$WORK/gateway.log")"
}
start_gateway
"$TUNNEL" user add alice --role admin --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/alice.yaml" "${ADMIN[@]}" >/dev/null 2>&1
"$TUNNEL" login "$WORK/alice.yaml" --config-dir "$WORK/alice" >/dev/null
ALICE=(--config "$WORK/alice/operator.yaml")

# A service that accepts and holds its connections, so a stream through it stays open.
start "$WORK/hold.log" python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $HOLD_PORT)); s.listen(8); print('READY', flush=True)
held = []
while True:
    held.append(s.accept()[0])
"
wait_for_line "$WORK/hold.log" READY 30 || fail "hold service" "$(cat "$WORK/hold.log")"

# --- labels: the token's, and an admin's; never the node's own ---------------------------------
TOKEN=$("$TUNNEL" token create --node node-17 --label site=plant-a "${ADMIN[@]}" 2>/dev/null)
start_node() {
    start "$WORK/client.log" "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost ${TOKEN:+--token "$TOKEN"} \
        --cert "$WORK/node/node.crt" --key "$WORK/node/node.key" --gateway-ca "$WORK/node/gateway-ca.crt" \
        --service "hold=127.0.0.1:$HOLD_PORT" --node-label tier=gold
    NODE_PID=$LAST_PID
    wait_for_line "$WORK/client.log" "connected to the gateway" 15 "$NODE_PID"
}
start_node || fail "node enrolled and connected" "$(cat "$WORK/client.log")"
TOKEN=""
out=$("$TUNNEL" node ls "${ADMIN[@]}" 2>&1)
if grep -qE 'node-17 +online +site=plant-a ' <<<"$out" && ! grep -q gold <<<"$out"; then
    pass "a node's own --node-label tier=gold is not a policy label; the token's site=plant-a is"
else
    fail "node labels from the token only" "$out"
fi
out=$("$TUNNEL" node label node-17 tier=gold site- "${ADMIN[@]}" 2>&1; "$TUNNEL" node ls "${ADMIN[@]}" 2>&1)
if grep -qE 'node-17 +online +tier=gold ' <<<"$out" && grep -q '"type":"node_label"' "$AUDIT"/audit-*.jsonl; then
    pass "tunnel node label sets and removes labels, and the audit records it"
else
    fail "tunnel node label" "$out"
fi

# --- names: a Kelvin sign is not K ---------------------------------------------------------------
out=$("$TUNNEL" proxy "${ALICE[@]}" $'\u212Ax-1' hold </dev/null 2>&1); status=$?
if [ "$status" != 0 ] && grep -q "not a node name" <<<"$out"; then pass "a Kelvin-sign node name is refused by name, not routed"; else fail "Kelvin sign (status $status)" "$out"; fi

# --- a node killed under a stream: a stable reason, the TLS text apart ---------------------------
{ sleep 30 | "$TUNNEL" proxy "${ALICE[@]}" node-17 hold >/dev/null 2>&1; } &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
if wait_for_line "$WORK/gateway.log" "stream open" 10; then
    kill -9 "$NODE_PID"
    # One segment in a run this short: wait for the close record to be written there.
    if wait_for_line "$AUDIT/audit-000001.jsonl" '"reason":"node_connection_lost"' 10; then
        line=$(grep -h '"reason":"node_connection_lost"' "$AUDIT"/audit-*.jsonl | head -n 1)
        if grep -q '"detail":' <<<"$line"; then pass "a node killed under a stream closes it as node_connection_lost, the text in detail"; else fail "detail field" "$line"; fi
    else
        fail "node_connection_lost close record" "$(grep -h stream_close "$AUDIT"/audit-*.jsonl)"
    fi
else
    fail "stream through the proxy opened" "$(tail -n 5 "$WORK/gateway.log")"
fi
kill "$PROXY_PID" 2>/dev/null

# --- a crash loop: every record up to the last start is signed ---------------------------------
start_node >/dev/null || true
for _ in 1 2 3; do
    kill -9 "$GATEWAY_PID"
    wait "$GATEWAY_PID" 2>/dev/null
    start_gateway
done
verdict=$("$TUNNEL" audit verify "$AUDIT" 2>&1)
signed=$(python3 - "$AUDIT" <<'PY'
import json, glob, sys
records = [json.loads(line) for name in sorted(glob.glob(sys.argv[1] + "/audit-*.jsonl")) for line in open(name)]
last_recovery = max(r["seq"] for r in records if r["type"] == "recovery")
last_signed = max((r["signed_seq"] for r in records if r["type"] == "checkpoint"), default=0)
print("yes" if last_signed >= last_recovery else f"no: last recovery seq {last_recovery}, last signed seq {last_signed}")
PY
)
if grep -q "^OK" <<<"$verdict" && [ "$signed" = yes ]; then
    pass "after three kill -9 of the gateway, every record up to its last start is signed"
else
    fail "signature coverage in a crash loop" "$verdict
$signed"
fi
