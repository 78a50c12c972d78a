#!/usr/bin/env bash
# The newcomer test: a throwaway local user, in a network namespace of its own where nothing
# listens on port 22 (or 7443), runs `tunnel dev` in an empty directory and then every command
# it prints, exactly as printed, in one shell. Each must succeed; the shell's words must come back
# in the replay; `tunnel shell NODE -- sh -c 'exit 3'` must exit 3 and be in the audit; a second
# `tunnel dev` must carry on from the first; a port in use must give one sentence.
#   Tests/EndToEnd/newcomer.sh [path/to/tunnel]        (default: .build/debug/tunnel; needs root)
# Prints one line per check and "N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TUNNEL=$(readlink -f "${1:-$ROOT/.build/debug/tunnel}")
[ -x "$TUNNEL" ] || { echo "no tunnel binary at $TUNNEL (swift build first)"; exit 2; }

if [ "${NEWCOMER_INNER:-}" != 1 ]; then
    # --- as root: the user, the namespace, then this script again as that user inside it ---------
    [ "$(id -u)" = 0 ] || { echo "newcomer.sh needs root (a throwaway user and a network namespace); skipped"; exit 0; }
    for tool in unshare runuser useradd userdel ip /usr/sbin/sshd ssh ssh-keygen python3; do
        command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs it)"; exit 2; }
    done
    WORK=$(mktemp -d /tmp/tunnel-newcomer.XXXXXX)
    chmod 755 "$WORK"
    NEWCOMER="tnew$$"
    cleanup() {
        # Everything the user started ran in the namespace, as that user; the inner script ends its
        # own processes, and userdel refuses while any is left, which the check below reports.
        userdel -r "$NEWCOMER" >/dev/null 2>&1
        [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
    }
    trap cleanup EXIT
    useradd --create-home --home-dir "$WORK/home" --shell /bin/bash "$NEWCOMER" || { echo "useradd failed"; exit 2; }
    # The user's copies of the binary and of this script (the checkout may be unreadable to it).
    mkdir -p "$WORK/bin" "$WORK/empty" "$WORK/test" "$WORK/out"
    cp "$TUNNEL" "$WORK/bin/tunnel"
    cp "$0" "$ROOT/Tests/EndToEnd/json-shapes.py" "$ROOT/scripts/lib/loopback.sh" "$ROOT/scripts/lib/e2e.sh" "$WORK/test/"
    chown -R "$NEWCOMER:" "$WORK/bin" "$WORK/empty" "$WORK/test" "$WORK/out"
    unshare --net -- bash -c 'ip link set lo up && exec runuser -u "$1" -- env -i HOME="$2/home" USER="$1" LOGNAME="$1" \
        PATH=/usr/local/bin:/usr/bin:/bin TERM=dumb NEWCOMER_INNER=1 WORK="$2" bash "$2/test/newcomer.sh" "$2/bin/tunnel"' \
        _ "$NEWCOMER" "$WORK"
    exit $?
fi

# --- as the newcomer, in the namespace --------------------------------------------------------
export OUT=$WORK/out
. "$WORK/test/e2e.sh"
e2e_inner newcomer
cd "$WORK/empty"

# start_dev NAME ARGS...: `tunnel dev` in the background; waits for its guide (the node is there then).
start_dev() {
    local name=$1; shift
    start "$OUT/$name.log" "$TUNNEL" dev "$@"
    DEV_PID=$LAST_PID
    wait_for_line "$OUT/$name.log" "Ctrl-C stops" 60 "$DEV_PID"
}
# stop_dev: Ctrl-C, as the guide says; the exit status of `tunnel dev` is its answer.
stop_dev() { kill -INT "$DEV_PID"; wait "$DEV_PID"; }

ss -ltn | grep -q ':22 ' && { fail "nothing listens on port 22 in the namespace" "$(ss -ltn)"; exit; }
start_dev dev || { fail "tunnel dev prints its guide" "$(cat "$OUT/dev.log")"; exit; }
pass "tunnel dev prints its guide once the node is there"
grep -q "private sshd serves it" "$OUT/dev.log" && pass "with nothing on port 22, a private sshd serves ssh" \
    || fail "private sshd" "$(cat "$OUT/dev.log")"

# Every indented command between "try:" and "Then", run in one shell as typed.
sed -n '/try:$/,/^Then /p' "$OUT/dev.log" | sed -n 's/^  \(tunnel\|export\)/\1/p' >"$OUT/commands.txt"
[ "$(wc -l <"$OUT/commands.txt")" -ge 8 ] || fail "the guide prints the commands to try" "$(cat "$OUT/dev.log")"
bash -c 'n=0; while IFS= read -r line; do n=$((n + 1)); eval "$line" >"$OUT/cmd$n.out" 2>&1 </dev/null; echo "$? $line"; done <"$OUT/commands.txt"' \
    >"$OUT/statuses.txt"
n=0
while read -r status line; do
    n=$((n + 1))
    if [ "$status" = 0 ]; then pass "as printed: $line"; else fail "as printed (exit $status): $line" "$(cat "$OUT/cmd$n.out")"; fi
done <"$OUT/statuses.txt"
output_of() { local n; n=$(grep -n -F -- "$1" "$OUT/commands.txt" | head -1 | cut -d: -f1); cat "$OUT/cmd${n:-0}.out" 2>/dev/null; }
grep -q "dev-node *online" <<<"$(output_of "tunnel nodes")" && pass "tunnel nodes lists dev-node online" || fail "nodes" "$(output_of "tunnel nodes")"
grep -q "hello from a recorded shell" <<<"$(output_of "tunnel shell")" && pass "the shell's words come back" || fail "shell output" "$(output_of "tunnel shell")"
grep -q "Linux" <<<"$(output_of "tunnel ssh")" && pass "ssh runs uname through the private sshd" || fail "ssh output" "$(output_of "tunnel ssh")"
grep -q "hydraulic pressure" <<<"$(output_of "tunnel logs")" && pass "tunnel logs shows the demo log" || fail "logs output" "$(output_of "tunnel logs")"
grep -q "hello from a recorded shell" <<<"$(output_of "tunnel audit replay")" && pass "the replay shows the shell's words" \
    || fail "replay" "$(output_of "tunnel audit replay")"

# The rest in the same environment the guide's first line sets up.
eval "$(head -1 "$OUT/commands.txt")"
AUDIT_DIR="$WORK/empty/tunnel-dev/gateway/audit"
tunnel shell dev-node -- sh -c 'exit 3' </dev/null >/dev/null 2>&1
status=$?
[ "$status" = 3 ] && pass "tunnel shell dev-node -- sh -c 'exit 3' exits 3" || fail "shell exit status passed through (got $status)"
grep -h '"type":"stream_open"' "$AUDIT_DIR"/audit-*.jsonl | grep -q -F "\"command\":\"sh -c 'exit 3'\"" \
    && pass "the command is in the audit record of the stream" || fail "command in the audit" "$(tail -3 "$AUDIT_DIR"/audit-*.jsonl)"
out=$(tunnel shell dev-node </dev/null 2>&1) && pass "an interactive shell ends at the end of its input, status 0" || fail "interactive shell" "$out"

# scp and rsync through the ssh-config block, which carries the sandbox's key and known_hosts.
tunnel ssh-config >"$OUT/ssh_config"
echo "copied through the tunnel" >"$OUT/payload.txt"
out=$(scp -q -F "$OUT/ssh_config" -o BatchMode=yes "$OUT/payload.txt" "dev-node.tunnel:$OUT/copied.txt" 2>&1) \
    && grep -q "copied through the tunnel" "$OUT/copied.txt" && pass "scp through tunnel ssh-config's block" || fail "scp" "$out"
if command -v rsync >/dev/null; then
    out=$(rsync -e "ssh -F $OUT/ssh_config -o BatchMode=yes" "$OUT/payload.txt" "dev-node.tunnel:$OUT/rsynced.txt" 2>&1) \
        && grep -q "copied through the tunnel" "$OUT/rsynced.txt" && pass "rsync through tunnel ssh-config's block" || fail "rsync" "$out"
fi

# Every reading command's JSON parses and has its documented shape (docs/JSON.md).
ADMIN=(--admin-socket "$WORK/empty/tunnel-dev/gateway/admin.sock")
tunnel version --json >"$OUT/version.json"
tunnel nodes -o json >"$OUT/nodes.json"
tunnel node ls --json "${ADMIN[@]}" >"$OUT/node-ls.json"
tunnel token create --node later-node "${ADMIN[@]}" >/dev/null 2>&1
tunnel token ls --json "${ADMIN[@]}" >"$OUT/token-ls.json"
tunnel user ls -o json "${ADMIN[@]}" >"$OUT/user-ls.json"
tunnel policy show --output json "${ADMIN[@]}" >"$OUT/policy-show.json"
tunnel whoami --json >"$OUT/whoami.json"
tunnel audit ls --json --dir "$AUDIT_DIR" >"$OUT/audit-ls.json"
tunnel audit ls --events --json --dir "$AUDIT_DIR" >"$OUT/audit-events.json"
stream=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["open"]["stream"])' <"$OUT/audit-ls.json" 2>/dev/null)
tunnel audit show "${stream:-none}" --json --dir "$AUDIT_DIR" >"$OUT/audit-show.json"
tunnel audit verify --json "$AUDIT_DIR" >"$OUT/audit-verify.json"
shapes=()
for kind in version nodes node-ls token-ls user-ls policy-show whoami audit-ls audit-events audit-show audit-verify; do
    shapes+=("$kind" "$OUT/$kind.json")
done
out=$(python3 "$WORK/test/json-shapes.py" "${shapes[@]}" 2>&1) && pass "every --json output parses and has its documented shape ($(( ${#shapes[@]} / 2 )) commands)" \
    || fail "JSON shapes" "$out"

# Progress lines: on a terminal (script(1) lends one) audit verify and export draw one; in a pipe, nothing.
out=$(script -qec "tunnel audit verify '$AUDIT_DIR'" /dev/null 2>&1)
grep -q "verifying: " <<<"$out" && grep -q "OK: " <<<"$out" && pass "audit verify draws a progress line on a terminal" || fail "verify progress" "$out"
out=$(script -qec "tunnel audit export --since 1h --dir '$AUDIT_DIR' --out '$OUT/evidence.tar'" /dev/null 2>&1)
grep -q "packing: " <<<"$out" && pass "audit export draws a progress line on a terminal" || fail "export progress" "$out"
# A logs download into a file shows its progress on the terminal (followed for a second, so it lasts).
out=$(script -qec "timeout 1 tunnel logs dev-node app -f >'$OUT/followed.log'" /dev/null 2>&1)
grep -q "downloading: " <<<"$out" && grep -q "press-3" "$OUT/followed.log" && pass "tunnel logs into a file draws a progress line on a terminal" \
    || fail "logs progress" "$out $(head -3 "$OUT/followed.log")"
tunnel audit verify "$AUDIT_DIR" >/dev/null 2>"$OUT/verify.err"
[ ! -s "$OUT/verify.err" ] && pass "audit verify in a pipe prints no progress" || fail "verify progress in a pipe" "$(cat -A "$OUT/verify.err")"

# tunnel doctor: passes against the sandbox, as an operator and as the node; fails with the
# documented fix for a wrong CA pin and, on the node, for an expired certificate.
NODE_CONFIG="$WORK/empty/tunnel-dev/node/client.yaml"
out=$(tunnel doctor 2>&1) && grep -q "all 5 checks passed" <<<"$out" && pass "tunnel doctor passes against the sandbox" || fail "tunnel doctor" "$out"
out=$(tunnel doctor --node --client-config "$NODE_CONFIG" 2>&1) && grep -q "ok    service ssh" <<<"$out" && grep -q "^ok    clock: within" <<<"$out" \
    && pass "tunnel doctor --node passes for the sandbox's node, services included" || fail "tunnel doctor --node" "$out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=another-ca -days 1 \
    -keyout "$OUT/other-ca.key" -out "$OUT/other-ca.crt" >/dev/null 2>&1
out=$(tunnel doctor --gateway-ca "$OUT/other-ca.crt" 2>&1); status=$?
[ "$status" = 1 ] && grep -q "^FAIL  gateway CA" <<<"$out" && grep -q "fix: the gateway-ca file must be the CA of this gateway.*(T021," <<<"$out" \
    && pass "tunnel doctor with a wrong CA pin fails with the fix (T021)" || fail "doctor, wrong pin (status $status)" "$out"
if command -v faketime >/dev/null; then
    out=$(faketime '+2 days' "$TUNNEL" doctor --node --client-config "$NODE_CONFIG" 2>&1); status=$?
    [ "$status" = 1 ] && grep -q "^FAIL  certificate: .* expired at" <<<"$out" && grep -q "(T011," <<<"$out" \
        && pass "tunnel doctor --node two days later: the node's certificate expired, with the fix (T011)" || fail "doctor, expired (status $status)" "$out"
    grep -q "^FAIL  clock: this machine's clock is 17[0-9]* s ahead of the gateway's" <<<"$out" && grep -q "(T022," <<<"$out" \
        && pass "tunnel doctor --node measures the two days' clock skew against the gateway (T022)" || fail "doctor, clock skew" "$out"
else
    fail "faketime is missing (scripts/setup.sh installs it)"
fi

# Stop, then a second run on the same directory carries on.
stop_dev && pass "Ctrl-C stops tunnel dev, exit status 0" || fail "tunnel dev stopped" "$(tail -5 "$OUT/dev.log")"
out=$(tunnel doctor 2>&1); status=$?
[ "$status" = 1 ] && grep -q "^FAIL  gateway: .*connection refused" <<<"$out" && grep -q "(T020," <<<"$out" \
    && pass "tunnel doctor after the gateway stopped fails with the fix (T020)" || fail "doctor, gateway stopped (status $status)" "$out"
left=$(ps -u "$(id -u)" -o pid=,args= | grep "[s]shd_config")
[ -z "$left" ] && pass "the private sshd ends with it" || fail "private sshd still running" "$left"
start_dev dev2 --log-format json || { fail "a second tunnel dev prints its guide" "$(cat "$OUT/dev2.log")"; exit; }
out=$(grep '^{' "$OUT/dev2.log" | python3 -c 'import json, sys; lines = [json.loads(l) for l in sys.stdin]; assert lines and all({"time", "level", "label", "source", "message", "metadata"} <= l.keys() for l in lines); print(len(lines))' 2>&1) \
    && ! grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$OUT/dev2.log" && pass "--log-format json: every log line is a JSON object with the text format's fields ($out lines)" || fail "JSON log lines" "$out"
grep -q "node enrolled" "$OUT/dev2.log" && fail "the second run re-enrolled the node" "$(cat "$OUT/dev2.log")" \
    || pass "the second tunnel dev reuses the enrolled node"
out=$(tunnel nodes 2>&1) && grep -q "dev-node *online" <<<"$out" && pass "after the restart dev-node is online again" || fail "nodes after restart" "$out"
out=$(tunnel audit replay last --dir "$AUDIT_DIR" 2>&1) && pass "recordings of the first run are still there" || fail "replay after restart" "$out"
out=$(tunnel audit verify "$AUDIT_DIR" 2>&1) && pass "the audit of both runs verifies" || fail "verify after restart" "$out"

# A port in use: one sentence on stderr, non-zero exit.
out=$("$TUNNEL" dev --dir other 2>&1 </dev/null); status=$?
if [ "$status" != 0 ] && [ "$(wc -l <<<"$out")" = 2 ] && head -1 <<<"$out" | grep -q "in use" && tail -1 <<<"$out" | grep -q "fix: .*(T030,"; then
    pass "a port in use gives one sentence and its fix: $(head -1 <<<"$out")"
else fail "port in use (exit $status)" "$out"; fi
stop_dev || fail "second tunnel dev stopped" "$(tail -5 "$OUT/dev2.log")"
