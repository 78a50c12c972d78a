#!/usr/bin/env bash
# End to end: the gateway as a process on its data directory. (1) One gateway per data
# directory: a second `tunnel gateway` on it exits non-zero with one sentence naming the
# directory and the first one's pid, and leaves the audit log byte for byte as it was (the first
# gateway is stopped with SIGSTOP meanwhile, so nothing else writes it); a restore of fleet.db
# under `flock -n DIR/gateway.lock` (deploy/UPGRADE.md) is refused while the gateway runs and
# goes ahead once it was killed with -9 (the kernel drops the lock). (2) SIGHUP reloads the
# policy: a stream allowed before is denied after the file changed and SIGHUP; a malformed file
# on SIGHUP keeps the policy in force, logs one error naming the culprit, and the gateway runs on.
# The gateway also re-reads its policy file when the bytes change (within a second), so the
# signal's own reload is shown on an unchanged file. Every process ended by PID.
#   Tests/EndToEnd/gateway-process.sh [path/to/tunnel]      (default: .build/debug/tunnel)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin gateway-process "${1:-}" python3 flock sha256sum sqlite3

# policy ROLE-SERVICES: writes the policy (role ops may open those services) in one rename, so
# the gateway never reads half a file.
policy() {
    printf 'roles:\n  ops:\n    allow:\n      - services: [%s]\n        nodes: ["*"]\n' "$1" >"$WORK/policy.new"
    mv -f "$WORK/policy.new" "$WORK/policy.yaml"
}
policy "echo, spare"

start_echo_server
DATA=$WORK/data
bench_gateway --policy "$WORK/policy.yaml"
"$TUNNEL" user add op --role ops --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/op.yaml" "${ADMIN[@]}" >/dev/null \
    && "$TUNNEL" login "$WORK/op.yaml" >/dev/null || fail "operator op logged in"
bench_node node-1 "$WORK/client.log" "echo=127.0.0.1:$ECHO_PORT" "spare=127.0.0.1:$ECHO_PORT"

# --- (1) one gateway per data directory ----------------------------------------------------
audit_state() {
    (cd "$DATA/audit" && find . -type f | sort | xargs sha256sum)
    "$TUNNEL" audit verify "$DATA/audit" 2>&1
    echo "verify exit $?"
}
kill -STOP "$GATEWAY_PID"
before=$(audit_state)
out=$(timeout 20 "$TUNNEL" gateway --listen "127.0.0.1:$(free_port)" --data-dir "$DATA" --policy "$WORK/policy.yaml" 2>&1)
status=$?
after=$(audit_state)
kill -CONT "$GATEWAY_PID"
expected="tunnel: another gateway is running on $DATA (pid $GATEWAY_PID); stop it or use another --data-dir"
if [ "$status" != 0 ] && [ "$status" != 124 ] && [ "$(head -n 1 <<<"$out")" = "$expected" ] && grep -q "(T031," <<<"$out"; then
    pass "a second gateway on the same data directory exits $status with one sentence naming it and the pid"
else
    fail "second gateway refused (exit $status)" "$out"
fi
if [ "$before" = "$after" ] && grep -q "verify exit" <<<"$after"; then
    pass "the second gateway left the audit log byte for byte as it was, and audit verify says the same"
else
    fail "audit log untouched" "$(diff <(echo "$before") <(echo "$after"))"
fi

sqlite3 "$DATA/fleet.db" ".backup '$WORK/fleet-backup.db'"
"$TUNNEL" token create --node node-after-backup "${ADMIN[@]}" >/dev/null 2>>"$WORK/token.err"
# deploy/UPGRADE.md's restore: under the lock, a killed gateway's WAL goes with the old database.
restore() { flock --nonblock "$DATA/gateway.lock" sh -c "cd '$DATA' && rm -f fleet.db-wal fleet.db-shm && cp '$WORK/fleet-backup.db' fleet.db"; }
kill -STOP "$GATEWAY_PID"
sum=$(sha256sum "$DATA"/fleet.db*)
restore 2>/dev/null
status=$?
sum_after=$(sha256sum "$DATA"/fleet.db*)
kill -CONT "$GATEWAY_PID"
if [ "$status" != 0 ] && [ "$sum_after" = "$sum" ]; then
    pass "a restore of fleet.db under flock -n gateway.lock is refused while the gateway runs"
else
    fail "restore into a live gateway's directory refused"
fi

# --- (2) SIGHUP reloads the policy ---------------------------------------------------------
stream() { printf 'ping-%s' "$1" | timeout 20 "$TUNNEL" proxy node-1 "$1" 2>&1; }
reloads() { grep -c "policy reloaded" "$WORK/gateway.log"; }
errors() { grep -c "policy not reloaded" "$WORK/gateway.log"; }
[ "$(stream echo)" = ping-echo ] && pass "policy 1 allows op the echo service" || fail "echo allowed" "$(stream echo)"

count=$(reloads)
kill -HUP "$GATEWAY_PID"
if wait_for_lines "$WORK/gateway.log" "policy reloaded" $((count + 1)) 10; then
    pass "SIGHUP reloads the policy file (unchanged, so the signal did it)"
else
    fail "SIGHUP reload" "$(tail -n 5 "$WORK/gateway.log")"
fi

count=$(reloads)
policy "spare"
kill -HUP "$GATEWAY_PID"
wait_for_lines "$WORK/gateway.log" "policy reloaded" $((count + 1)) 10 || fail "reload after the change" "$(tail -n 5 "$WORK/gateway.log")"
out=$(stream echo)
if [ "$out" != ping-echo ] && grep -q "(T108," <<<"$out" && [ "$(stream spare)" = ping-spare ]; then
    pass "after the change and SIGHUP, the echo stream allowed before is denied; spare still works"
else
    fail "echo denied after SIGHUP" "$out"
fi

printf 'roles:\n  ops:\n    allow:\n      - servcies: [echo]\n' >"$WORK/policy.new"
mv -f "$WORK/policy.new" "$WORK/policy.yaml"
kill -HUP "$GATEWAY_PID"
wait_for_line "$WORK/gateway.log" "policy not reloaded" 10 || fail "malformed policy reported" "$(tail -n 5 "$WORK/gateway.log")"
line=$(grep "policy not reloaded" "$WORK/gateway.log" | tail -n 1)
if kill -0 "$GATEWAY_PID" 2>/dev/null && [ "$(stream spare)" = ping-spare ] && [ "$(stream echo)" != ping-echo ] \
    && [ "$(errors)" = 1 ] && grep -q 'servcies' <<<"$line"; then
    pass "a malformed policy on SIGHUP: one error naming the culprit, the policy in force stays, the gateway runs on"
else
    fail "malformed policy on SIGHUP" "$(grep "policy" "$WORK/gateway.log" | tail -n 4)"
fi
count=$(errors)
kill -HUP "$GATEWAY_PID"
wait_for_lines "$WORK/gateway.log" "policy not reloaded" $((count + 1)) 10 && kill -0 "$GATEWAY_PID" \
    && pass "each SIGHUP on the malformed file logs its error once more, and the gateway stays up" \
    || fail "second SIGHUP on the malformed file" "$(tail -n 5 "$WORK/gateway.log")"

# --- the lock goes with the process --------------------------------------------------------
kill -9 "$GATEWAY_PID"
wait "$GATEWAY_PID" 2>/dev/null
if restore; then
    pass "after kill -9 the lock is gone: the restore goes ahead"
else
    fail "restore after kill -9"
fi
policy "spare"
start "$WORK/gateway-2.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$DATA" --policy "$WORK/policy.yaml"
if wait_for_line "$WORK/gateway-2.log" "admin socket open" 30 "$LAST_PID" \
    && ! "$TUNNEL" token ls "${ADMIN[@]}" 2>&1 | grep -q node-after-backup; then
    pass "a gateway starts on the restored directory (no stale lock), with the backup's tokens"
else
    fail "restart on the restored directory" "$(cat "$WORK/gateway-2.log")"
fi
