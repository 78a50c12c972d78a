#!/usr/bin/env bash
# End to end: the backup and restore of deploy/UPGRADE.md for one box (SQLite store and PKI
# directory). A running gateway's fleet.db is copied with SQLite's online backup
# (`sqlite3 .backup`) and its PKI directory with cp -a; the gateway is killed, a new data
# directory is made from the copies, and a gateway started on it must take back the enrolled
# node (which reconnects on its own, with its old certificate) and the operator; a token
# created after the backup must be unknown there. Every process ended by PID.
#   Tests/EndToEnd/backup-restore.sh [path/to/tunnel]      (default: .build/debug/tunnel)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin backup-restore "${1:-}" sqlite3

GATEWAY_PORT=$(free_port)
start "$WORK/gateway-1.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data"
FIRST=$LAST_PID
wait_for_line "$WORK/gateway-1.log" "admin socket open" 15 "$FIRST" || { fail "gateway started" "$(cat "$WORK/gateway-1.log")"; exit 1; }
"$TUNNEL" user add alice --role admin --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/alice.yaml" \
    --admin-socket "$WORK/data/admin.sock" >/dev/null 2>&1
"$TUNNEL" login "$WORK/alice.yaml" >/dev/null 2>&1 || fail "alice logs in" "$(cat "$WORK/alice.yaml")"
token=$("$TUNNEL" token create --node node-1 2>>"$WORK/token.err")
start "$WORK/client.log" "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$token" \
    --cert "$WORK/node/node.crt" --key "$WORK/node/node.key" --gateway-ca "$WORK/node/gateway-ca.crt" --service dummy=127.0.0.1:9
wait_for_line "$WORK/client.log" "connected to the gateway" 20 || fail "node-1 connected" "$(cat "$WORK/client.log")"

# --- the backup, while the gateway runs ------------------------------------------------------
mkdir -p "$WORK/backup"
out=$(sqlite3 "$WORK/data/fleet.db" ".backup '$WORK/backup/fleet.db'" 2>&1) && pass "sqlite3 .backup of the live fleet.db" || fail "sqlite3 .backup" "$out"
cp -a "$WORK/data/pki" "$WORK/backup/pki"
late=$("$TUNNEL" token create --node node-late 2>>"$WORK/token.err")
[[ "$late" == tnl1.* ]] || fail "a token after the backup" "$late $(cat "$WORK/token.err")"

# --- lose the box; restore into a new data directory ------------------------------------------
kill -9 "$FIRST"
wait "$FIRST" 2>/dev/null
mkdir -m 0700 "$WORK/restored"
cp -a "$WORK/backup/pki" "$WORK/restored/pki"
cp "$WORK/backup/fleet.db" "$WORK/restored/fleet.db"
start "$WORK/gateway-2.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/restored"
wait_for_line "$WORK/gateway-2.log" "admin socket open" 15 "$LAST_PID" || { fail "restored gateway started" "$(cat "$WORK/gateway-2.log")"; exit 1; }

if wait_for_lines "$WORK/client.log" "connected to the gateway" 2 40; then
    pass "the node reconnects by itself to the restored gateway with its old certificate"
else
    fail "node reconnects after the restore" "$(tail -n 5 "$WORK/client.log"; tail -n 5 "$WORK/gateway-2.log")"
fi
out=$("$TUNNEL" nodes 2>&1)
if grep -qE '^node-1 +online' <<<"$out"; then pass "alice's old certificate works; tunnel nodes shows node-1 online"; else fail "tunnel nodes after the restore" "$out"; fi
out=$("$TUNNEL" token ls 2>&1)
if grep -q "node-1" <<<"$out" && ! grep -q "node-late" <<<"$out"; then
    pass "the restored store is the backup: the token made after it is not there"
else
    fail "tokens after the restore" "$out"
fi
