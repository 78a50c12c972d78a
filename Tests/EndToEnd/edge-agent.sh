#!/usr/bin/env bash
# The slim edge agent, `tunnel-client`, as a node would run it: it links and maps no Foundation,
# ICU, SQLite or libpq; it reads a client.yaml (libyaml, not Yams) and refuses a bad one with
# file:line, and an unknown flag with one message; it enrolls with a join token, connects, and
# carries an operator's bytes to its service, against a real `tunnel gateway` on loopback.
#
#   Tests/EndToEnd/edge-agent.sh [path/to/tunnel] [path/to/tunnel-client]
# Defaults: .build/debug/tunnel and the tunnel-client beside it.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/lib/e2e.sh
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin edge-agent "${1:-}" python3 readelf
AGENT=$(readlink -f "${2:-$(dirname "$TUNNEL")/tunnel-client}")
[ -x "$AGENT" ] || { echo "no tunnel-client at $AGENT (swift build --product tunnel-client)"; exit 2; }

# --- what it links -------------------------------------------------------------------------------
needed=$(readelf -d "$AGENT" | grep NEEDED)
heavy=$(grep -oE 'lib(Foundation|FoundationInternationalization|_FoundationICU|FoundationNetworking|sqlite3|pq)\.so[^]]*' <<<"$needed")
if [ -z "$heavy" ] && grep -q 'libssl' <<<"$needed"; then pass "tunnel-client links no Foundation, ICU, SQLite or libpq"
else fail "tunnel-client links no Foundation, ICU, SQLite or libpq" "$needed"; fi

# --- its config file ---------------------------------------------------------------------------------
GATEWAY_PORT=$(free_port)
SERVICE_PORT=$(free_port)
mkdir -p "$WORK/node"
cat >"$WORK/node/client.yaml" <<EOF
# a node's settings, as deploy/client.yaml has them
gateway: 127.0.0.1:$GATEWAY_PORT
server-name: localhost
cert: node.crt
key: node.key
gateway-ca: gateway-ca.crt
services:
  echo: 127.0.0.1:$SERVICE_PORT
node-labels:
  site: "berlin"
EOF
out=$("$AGENT" --config "$WORK/node/client.yaml" --check-config --token x 2>&1)
if grep -q "^  echo: 127.0.0.1:$SERVICE_PORT" <<<"$out" && grep -q "^  site: berlin" <<<"$out" && grep -q "^cert: $WORK/node/node.crt" <<<"$out"; then pass "--check-config reads client.yaml (relative paths against its directory)"
else fail "--check-config reads client.yaml (relative paths against its directory)" "$out"; fi
printf 'gateway: 127.0.0.1:1\nservises:\n  echo: 127.0.0.1:1\n' >"$WORK/bad.yaml"
out=$("$AGENT" --config "$WORK/bad.yaml" --check-config 2>&1); code=$?
if [ "$code" = 2 ] && grep -q "bad.yaml:2: unknown key \"servises\" (did you mean \"services\"?)" <<<"$out"; then pass "an unknown key is refused with file:line and a suggestion (exit 2)"
else fail "an unknown key is refused with file:line and a suggestion (exit 2)" "exit $code: $out"; fi

out=$("$AGENT" --gatway 127.0.0.1:1 2>&1); code=$?
if [ "$code" = 2 ] && [ "$(wc -l <<<"$out")" = 2 ] && grep -q "^tunnel: unknown flag --gatway (did you mean --gateway?); see tunnel-client --help" <<<"$out"; then pass "an unknown flag is refused with one message and a suggestion (exit 2)"
else fail "an unknown flag is refused with one message and a suggestion (exit 2)" "exit $code: $out"; fi
help=$("$AGENT" --help 2>&1)
if diff <(sed 1,4d <<<"$help") <("$TUNNEL" client --help | sed 1,4d) >/dev/null && grep -q -- "--service <k=v>" <<<"$help"; then pass "tunnel-client --help lists the same flags as tunnel client --help"
else fail "tunnel-client --help lists the same flags as tunnel client --help" "$(head -5 <<<"$help")"; fi

# --- enrolled and serving ----------------------------------------------------------------------------
start "$WORK/echo.log" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); print("READY", flush=True)
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()' "$SERVICE_PORT"
wait_for_line "$WORK/echo.log" READY 10 "$LAST_PID" || fail "echo service starts" "$(cat "$WORK/echo.log")"
start "$WORK/gateway.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data"
wait_for_line "$WORK/gateway.log" "admin socket open" 20 "$LAST_PID" || fail "gateway starts" "$(tail -5 "$WORK/gateway.log")"
ADMIN=(--admin-socket "$WORK/data/admin.sock")
{ "$TUNNEL" user add e2e --role admin --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/e2e.yaml" "${ADMIN[@]}" \
  && "$TUNNEL" login "$WORK/e2e.yaml"; } >"$WORK/operator.log" 2>&1 || fail "operator login" "$(cat "$WORK/operator.log")"
TOKEN=$("$TUNNEL" token create --node slim-1 "${ADMIN[@]}" 2>>"$WORK/operator.log")
start "$WORK/agent.log" "$AGENT" --config "$WORK/node/client.yaml" --token "$TOKEN"
AGENT_PID=$LAST_PID
if wait_for_line "$WORK/agent.log" "connected to the gateway" 20 "$AGENT_PID"; then pass "tunnel-client enrolls with a join token and connects"
else fail "tunnel-client enrolls with a join token and connects" "$(tail -5 "$WORK/agent.log")"; fi
# (libdispatch may be mapped: FoundationEssentials links it.)
mapped=$(grep -oE '/[^ ]*/lib(Foundation|FoundationInternationalization|_FoundationICU|sqlite3|pq)\.so[^ ]*' "/proc/$AGENT_PID/maps" 2>/dev/null | sort -u)
if [ -z "$mapped" ] && [ -e "/proc/$AGENT_PID/maps" ]; then pass "the running agent maps none of them either"
else fail "the running agent maps none of them either" "$mapped"; fi

FORWARD_PORT=$(free_port)
start "$WORK/forward.log" "$TUNNEL" forward slim-1 echo --listen "127.0.0.1:$FORWARD_PORT"
wait_for_line "$WORK/forward.log" "^forwarding " 20 "$LAST_PID" || fail "tunnel forward starts" "$(cat "$WORK/forward.log")"
check "an operator's bytes reach the agent's service and come back" python3 -c '
import socket, sys, os
data = os.urandom(1 << 20)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(data); s.shutdown(socket.SHUT_WR)
got = b""
while len(got) < len(data):
    d = s.recv(65536)
    if not d: break
    got += d
sys.exit(0 if got == data else "got %d of %d bytes back, or different ones" % (len(got), len(data)))' "$FORWARD_PORT"
out=$("$TUNNEL" nodes 2>&1)
if grep slim-1 <<<"$out" | grep -q "online .* echo "; then pass "the gateway lists the node online with the service from its client.yaml"
else fail "the gateway lists the node online with the service from its client.yaml" "$out"; fi
