#!/usr/bin/env bash
# Drives the real kubectl against kube-apiserver-standin.py: first directly, then through a
# plain TCP forward (socat) with a kubeconfig rewritten the way our tunnel will rewrite it
# (server: https://127.0.0.1:OTHERPORT + tls-server-name: kubernetes).
# Needs: python3, openssl, kubectl, socat, curl, script (util-linux). Exits non-zero on any failure.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
PASSED=0
FAILED=0
STANDIN_PID=""
BACKGROUND_PIDS=()

cleanup() {
    for pid in "${BACKGROUND_PIDS[@]}" $STANDIN_PID; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

export HOME="$WORK/home"   # kubectl's discovery cache must not leak between runs
mkdir -p "$HOME"
# KUBECTL=/path/to/kubectl selects another client (e.g. Debian's kubernetes-client 1.20).
if [ -n "${KUBECTL:-}" ]; then
    mkdir -p "$WORK/bin" && ln -s "$(readlink -f "$KUBECTL")" "$WORK/bin/kubectl"
    export PATH="$WORK/bin:$PATH"
fi
for tool in kubectl openssl socat curl script python3; do
    command -v "$tool" > /dev/null || { echo "missing $tool (see README-KUBE.md)"; exit 1; }
done
# kubectl >= 1.31 upgrades exec and port-forward to websockets; older ones use SPDY/3.1.
MINOR=$(kubectl version --client -o json 2>/dev/null |
    python3 -c 'import json, sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")))')
if [ "$MINOR" -ge 31 ]; then
    UPGRADE=websocket
    EXEC_PROTOCOL="websocket v5.channel.k8s.io"
    PORTFORWARD_PROTOCOL="websocket SPDY/3.1+portforward.k8s.io"
else
    UPGRADE=spdy
    EXEC_PROTOCOL="SPDY/3.1 v4.channel.k8s.io"
    PORTFORWARD_PROTOCOL="SPDY/3.1 portforward.k8s.io"
fi

pass() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }

# check NAME COMMAND...: passes when the command exits 0.
check() {
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for FILE PATTERN [SECONDS]: poll until FILE has a line matching PATTERN.
wait_for() {
    local file=$1 pattern=$2 deadline=$((SECONDS + ${3:-20}))
    until grep -qE "$pattern" "$file" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# wait_lines FILE COUNT: poll until FILE has at least COUNT lines.
wait_lines() {
    local file=$1 count=$2 deadline=$((SECONDS + 20))
    until [ "$({ wc -l < "$file"; } 2>/dev/null || echo 0)" -ge "$count" ]; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# stop_background PID: the stream must still be open (process alive) when we end it.
stop_background() {
    local pid=$1 alive=0
    kill -0 "$pid" 2>/dev/null && alive=1
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local remaining=() other
    for other in "${BACKGROUND_PIDS[@]}"; do [ "$other" = "$pid" ] || remaining+=("$other"); done
    BACKGROUND_PIDS=("${remaining[@]}")
    [ "$alive" -eq 1 ]
}

# logged_since LINE TEXT: the stand-in logged TEXT after its first LINE lines of stderr.
logged_since() {
    tail -n "+$(($1 + 1))" "$WORK/standin.err" | grep -qF "$2"
}

# suite LABEL: every kubectl scenario against the kubeconfig in $KUBECONFIG.
suite() {
    local label=$1 out="$WORK/$1" pid local_port mark
    mkdir -p "$out"

    timeout 20 kubectl get nodes > "$out/nodes" 2>&1
    check "$label: get nodes lists node-17" grep -qE '^node-17 +Ready ' "$out/nodes"

    timeout 20 kubectl get pods > "$out/pods" 2>&1
    check "$label: get pods lists demo" grep -qE '^demo +1/1 +Running ' "$out/pods"

    timeout 30 kubectl get pods --watch > "$out/watch" 2>&1 &
    pid=$!; BACKGROUND_PIDS+=("$pid")
    wait_lines "$out/watch" 3
    check "$label: get pods --watch streams events and stays open" stop_background "$pid"
    check "$label: watch output (header, list row, watch event row)" \
        test "$(sed -n '1p' "$out/watch" | awk '{print $1}')$(sed -n '3p' "$out/watch" | awk '{print $1}')" = NAMEdemo

    timeout 30 kubectl logs -f demo > "$out/logs" 2>&1 &
    pid=$!; BACKGROUND_PIDS+=("$pid")
    wait_lines "$out/logs" 2
    check "$label: logs -f streams and stays open" stop_background "$pid"
    check "$label: logs -f first two lines" \
        test "$(head -n 2 "$out/logs" | sed 's/.* demo: //' | tr '\n' ' ')" = "tick 1 tick 2 "

    mark=$(wc -l < "$WORK/standin.err")
    timeout 20 kubectl exec demo -v=8 -- echo hello > "$out/exec" 2> "$out/exec.log"
    check "$label: exec echo hello prints hello and exits 0" test "$(cat "$out/exec")" = hello
    check "$label: exec upgraded to $EXEC_PROTOCOL" logged_since "$mark" "over $EXEC_PROTOCOL: exit 0"
    if [ "$UPGRADE" = websocket ]; then
        check "$label: kubectl reports subprotocol v5.channel.k8s.io" \
            grep -q 'The subprotocol is v5.channel.k8s.io' "$out/exec.log"
        check "$label: exec did not fall back to SPDY" \
            bash -c "! grep -qiE 'fallback|falling back|X-Stream-Protocol-Version' '$out/exec.log'"
    fi

    printf 'one\ntwo\n' | timeout 20 kubectl exec -i demo -- cat > "$out/cat" 2>&1
    check "$label: exec -i cat echoes stdin until it closes" test "$(cat "$out/cat")" = "$(printf 'one\ntwo')"

    timeout 20 kubectl exec demo -- no-such-binary > /dev/null 2>&1
    check "$label: exec of a missing command exits 127" test $? -eq 127

    # exec -it needs a terminal: script(1) gives kubectl a pty; the pty buffers our typing.
    { sleep 1; printf 'echo hi there\r'; sleep 0.5; printf 'exit 3\r'; } |
        script -qec "timeout 20 kubectl exec -it demo -- sh" /dev/null > "$out/shell" 2>&1
    check "$label: exec -it sh runs an interactive session, exit 3 propagates" test $? -eq 3
    check "$label: exec -it sh echoed command output" grep -q '^hi there' "$out/shell"

    local_port=$(free_port)
    mark=$(wc -l < "$WORK/standin.err")
    timeout 60 kubectl port-forward -v=8 pod/demo "$local_port:80" > "$out/pf.log" 2>&1 &
    pid=$!; BACKGROUND_PIDS+=("$pid")
    wait_for "$out/pf.log" "Forwarding from 127.0.0.1:$local_port"
    timeout 10 curl -sS "http://127.0.0.1:$local_port/" > "$out/curl1" 2>&1
    timeout 10 curl -sS "http://127.0.0.1:$local_port/" > "$out/curl2" 2>&1
    check "$label: port-forward GET / returns 'hello from demo' (twice)" \
        test "$(cat "$out/curl1" "$out/curl2")" = "$(printf 'hello from demo\nhello from demo')"
    check "$label: port-forward upgraded to $PORTFORWARD_PROTOCOL" \
        logged_since "$mark" "port-forward over $PORTFORWARD_PROTOCOL"
    if [ "$UPGRADE" = websocket ]; then
        check "$label: kubectl reports the tunnelled portforward.k8s.io protocol" \
            grep -q 'negotiated protocol: portforward.k8s.io' "$out/pf.log"
        check "$label: port-forward did not fall back to plain SPDY" \
            bash -c "! grep -qiE 'fallback|falling back|X-Stream-Protocol-Version' '$out/pf.log'"
    fi
    check "$label: port-forward still running after the requests" stop_background "$pid"
}

python3 "$HERE/kube-apiserver-standin.py" --dir "$WORK/state" > "$WORK/standin.out" 2> "$WORK/standin.err" &
STANDIN_PID=$!
if ! wait_for "$WORK/standin.out" '^READY port=[0-9]+$' 60; then
    echo "stand-in did not become ready:"; cat "$WORK/standin.err"; exit 1
fi
PORT=$(sed -n 's/^READY port=//p' "$WORK/standin.out")
PKI="$WORK/state/pki"
echo "# stand-in on 127.0.0.1:$PORT; kubectl $(kubectl version --client -o json | python3 -c \
    'import json, sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), expecting $UPGRADE upgrades"

export KUBECONFIG="$WORK/state/kubeconfig"
suite direct

# Authentication as k3s does it: no anonymous requests; a client certificate or the token.
timeout 10 curl -sS --cacert "$PKI/ca.crt" "https://127.0.0.1:$PORT/version" > "$WORK/anon" 2>&1
check "client without certificate or token gets 401" grep -q '"code": 401' "$WORK/anon"
check "client with the admin certificate is served" bash -c "timeout 10 curl -sS \
    --cacert '$PKI/ca.crt' --cert '$PKI/admin.crt' --key '$PKI/admin.key' \
    https://127.0.0.1:$PORT/version | grep -q gitVersion"

# Impersonation: honoured for the node's service-account token, refused for anyone else.
NODE_KUBECONFIG="$WORK/state/node-kubeconfig"
KUBECONFIG="$NODE_KUBECONFIG" timeout 20 kubectl get pods > "$WORK/sa-pods" 2>&1
check "the node's service account itself may not list pods" grep -q 'User "system:serviceaccount:kube-system:tunnel-node" cannot list' "$WORK/sa-pods"
KUBECONFIG="$NODE_KUBECONFIG" timeout 20 kubectl --as alice --as-group edge-operators auth whoami > "$WORK/whoami" 2>&1
check "impersonated by the node, whoami is alice in edge-operators" grep -qE 'Groups +\[edge-operators system:authenticated\]' "$WORK/whoami"
KUBECONFIG="$NODE_KUBECONFIG" timeout 20 kubectl --as alice --as-group edge-operators exec demo -- echo hi > "$WORK/imp-exec" 2>&1
check "edge-operators may exec" test "$(cat "$WORK/imp-exec")" = hi
KUBECONFIG="$NODE_KUBECONFIG" timeout 20 kubectl --as alice --as-group edge-viewers delete pod demo > "$WORK/imp-delete" 2>&1
check "edge-viewers may not delete" grep -q 'User "alice" cannot delete resource "pods"' "$WORK/imp-delete"
timeout 10 curl -sS --cacert "$PKI/ca.crt" --cert "$PKI/mallory.crt" --key "$PKI/mallory.key" \
    -H 'Impersonate-User: alice' "https://127.0.0.1:$PORT/api/v1/namespaces/default/pods" > "$WORK/mallory" 2>&1
check "impersonation by anyone else is refused with 403" grep -q 'User \\"mallory\\" cannot impersonate' "$WORK/mallory"

# Through a TCP forward on another port: rewrite server and pin the certificate's name.
FORWARD_PORT=$(free_port)
socat "TCP-LISTEN:$FORWARD_PORT,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$PORT" 2>> "$WORK/socat.log" &
BACKGROUND_PIDS+=("$!")
sed -e "s#^\( *\)server: https://127.0.0.1:$PORT#\1server: https://127.0.0.1:$FORWARD_PORT\n\1tls-server-name: kubernetes#" \
    "$WORK/state/kubeconfig" > "$WORK/forwarded.kubeconfig"
wait_for /proc/net/tcp "0100007F:$(printf '%04X' "$FORWARD_PORT") 00000000:0000 0A" 10
KUBECONFIG="$WORK/forwarded.kubeconfig" suite forwarded

# The same forward reached as 127.0.0.2 (not in the certificate): only tls-server-name saves it.
sed -e "s#127.0.0.1:$FORWARD_PORT#127.0.0.2:$FORWARD_PORT#" "$WORK/forwarded.kubeconfig" > "$WORK/other-ip.kubeconfig"
socat "TCP-LISTEN:$FORWARD_PORT,bind=127.0.0.2,reuseaddr,fork" "TCP:127.0.0.1:$PORT" 2>> "$WORK/socat.log" &
BACKGROUND_PIDS+=("$!")
wait_for /proc/net/tcp "0200007F:$(printf '%04X' "$FORWARD_PORT") 00000000:0000 0A" 10
check "via 127.0.0.2 with tls-server-name: kubernetes verifies" bash -c \
    "KUBECONFIG='$WORK/other-ip.kubeconfig' timeout 20 kubectl get nodes | grep -q node-17"
grep -v 'tls-server-name' "$WORK/other-ip.kubeconfig" > "$WORK/no-name.kubeconfig"
KUBECONFIG="$WORK/no-name.kubeconfig" timeout 20 kubectl get nodes > "$WORK/no-name.out" 2>&1
check "via 127.0.0.2 without tls-server-name fails verification" \
    grep -q "certificate is valid for .*127.0.0.1, not 127.0.0.2" "$WORK/no-name.out"

# SIGTERM: the stand-in must exit promptly and cleanly.
kill -TERM "$STANDIN_PID"
deadline=$((SECONDS + 10))
while kill -0 "$STANDIN_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
if kill -0 "$STANDIN_PID" 2>/dev/null; then
    fail "stand-in exits 0 within 10 s of SIGTERM (still running)"
else
    wait "$STANDIN_PID"
    check "stand-in exits 0 within 10 s of SIGTERM" test $? -eq 0
    STANDIN_PID=""
fi

check "stand-in logged no protocol error and no traceback" \
    bash -c "! grep -qE 'protocol error|Traceback' '$WORK/standin.err'"
[ "$FAILED" -eq 0 ] || { echo "# stand-in log (tail):"; tail -n 30 "$WORK/standin.err"; }

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
