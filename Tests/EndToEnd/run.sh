#!/usr/bin/env bash
# End-to-end tests with real programs on loopback: the built `tunnel` binary as gateway, node
# client and operator CLI; Debian's OpenSSH sshd started here on a free port with a generated
# host key; the real ssh, scp and kubectl; and the Kubernetes API stand-in of Tests/Fixtures/kube
# (no k3s binary can be installed here). Every process started here is ended by PID, every file
# lives in one temporary directory that is removed at the end.
#   Tests/EndToEnd/run.sh [path/to/tunnel]        (default: .build/debug/tunnel)
# Prints one line per check and "N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin run "${1:-}" /usr/sbin/sshd ssh scp ssh-keygen python3 openssl sha256sum kubectl curl
mkdir -p "$HOME/.ssh"
chmod 700 "$HOME/.ssh"

GATEWAY_PORT=$(free_port)
ADMIN=(--admin-socket "$WORK/data/admin.sock")
cat >"$WORK/policy.yaml" <<'POLICY'
roles:
  admin:
    admin: true
    allow:
      - services: ["*"]
        nodes: ["*"]
  vendor-acme:
    allow:
      - services: [reverse]
        labels: {site: plant-a}
POLICY

# --- the node's own services: sshd and the k3s API stand-in --------------------------------
SSH_PORT=$(free_port)
prepare_sshd "$SSH_PORT" "Subsystem sftp /usr/lib/openssh/sftp-server"
start "$WORK/sshd.log" /usr/sbin/sshd -D -e -f "$WORK/sshd_config"
wait_for_line "$WORK/sshd.log" "Server listening" 30 || fail "sshd started" "$(cat "$WORK/sshd.log")"

start "$WORK/kube.log" python3 "$ROOT/Tests/Fixtures/kube/kube-apiserver-standin.py" --dir "$WORK/kube"
wait_for_line "$WORK/kube.log" "READY port=" 30 || fail "kube API stand-in started" "$(cat "$WORK/kube.log")"
KUBE_PORT=$(grep -o 'READY port=[0-9]*' "$WORK/kube.log" | head -1 | cut -d= -f2)

# A service that answers only after its client half-closes: it proves stdin EOF crosses the tunnel.
EOF_PORT=$(free_port)
start "$WORK/eof.log" python3 -u -c '
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(8)
print("READY", flush=True)
while True:
    connection, _ = server.accept()
    # A bytearray grows in amortised linear time (bytes += would copy 64 MB a thousand times), and
    # a peer that resets must not end the service for everyone after it.
    data = bytearray()
    try:
        while chunk := connection.recv(65536):
            data += chunk
        data.reverse()
        connection.sendall(data)
    except OSError:
        pass
    connection.close()
' "$EOF_PORT"
wait_for_line "$WORK/eof.log" READY 30 || fail "EOF echo service started" "$(cat "$WORK/eof.log")"

# --- gateway, admin bootstrap, node enrollment with a token --------------------------------------
start "$WORK/gateway.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data" --policy "$WORK/policy.yaml"
GATEWAY_PID=$LAST_PID
wait_for_line "$WORK/gateway.log" "admin socket open" 30 || fail "gateway started" "$(cat "$WORK/gateway.log")"
if [ -f "$WORK/data/pki/node-ca.crt" ] && [ "$(stat -c %a "$WORK/data/pki/node-ca.key")" = 600 ] && [ "$(stat -c %a "$WORK/data/admin.sock")" = 600 ]; then
    pass "the gateway creates its CAs (keys 0600) and a 0600 admin socket on first start"
else
    fail "gateway-owned PKI" "$(ls -l "$WORK/data" "$WORK/data/pki" 2>&1)"
fi
# Root on the gateway host bootstraps the first admin through the admin socket.
check "user add (admin socket) writes alice's bundle" \
    "$TUNNEL" user add alice --role admin --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/alice.yaml" "${ADMIN[@]}"
# Installed in the default place ($HOME/.config/tunnel), so operator commands need no flags.
check "login installs the bundle" "$TUNNEL" login "$WORK/alice.yaml"
# From here on admin commands go through alice's operator connection (no socket given, none at the default path).
TOKEN=$("$TUNNEL" token create --node node-17 --label site=plant-a 2>"$WORK/token.err")
if [[ "$TOKEN" == tnl1.* ]]; then pass "an admin operator creates a join token"; else fail "token create" "$TOKEN $(cat "$WORK/token.err")"; fi

NODE_FILES=(--cert "$WORK/node/node.crt" --key "$WORK/node/node.key" --gateway-ca "$WORK/node/gateway-ca.crt")
start "$WORK/client.log" "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$TOKEN" "${NODE_FILES[@]}" \
    --service "ssh=127.0.0.1:$SSH_PORT" --service "k3s=127.0.0.1:$KUBE_PORT" --service "reverse=127.0.0.1:$EOF_PORT" \
    --node-label site=plant-a --log-source "app=$WORK/logs/app.log" --log-root "$WORK/logs" --shell-user "${TEST_SHELL_ACCOUNT:-root}"
if wait_for_line "$WORK/client.log" "connected to the gateway" 15 && grep -q "enrolled" "$WORK/client.log"; then
    pass "the node enrolls with the token and connects"
else
    fail "client enrolls and connects" "$(cat "$WORK/client.log")"
fi
if [ "$(stat -c %a "$WORK/node/node.key")" = 600 ]; then pass "the node's key was made on the node, mode 0600"; else fail "node key mode" "$(ls -l "$WORK/node")"; fi

nodes=$("$TUNNEL" nodes 2>&1)
if grep -q 'node-17 *online *site=plant-a *k3s,logs,reverse,shell,ssh' <<<"$nodes"; then pass "tunnel nodes lists node-17 online with labels and services"; else fail "tunnel nodes" "$nodes"; fi

out=$(printf 'stressed' | "$TUNNEL" proxy node-17 reverse 2>&1)
if [ "$out" = desserts ]; then pass "stdin EOF through tunnel proxy reaches the service, and its answer comes back"; else fail "half-close through tunnel proxy" "$out"; fi
printf 'stressed' >"$WORK/stressed.txt"
"$TUNNEL" proxy node-17 reverse <"$WORK/stressed.txt" >"$WORK/desserts.txt" 2>&1
if [ "$(cat "$WORK/desserts.txt")" = desserts ]; then pass "tunnel proxy takes a file as stdin and as stdout"; else fail "tunnel proxy with files" "$(cat "$WORK/desserts.txt")"; fi

# A bulk stream of the non-interactive class through separate stdin and stdout pipes: every byte
# must come back, and without stalls (a stalled splice would run into the timeout).
got=$(head -c 64000000 /dev/zero | timeout 60 "$TUNNEL" proxy node-17 reverse 2>&1 | wc -c)
if [ "$got" = 64000000 ]; then pass "64 MB through tunnel proxy to a bulk service and back, every byte"; else fail "bulk tunnel proxy" "$got bytes back"; fi

# --- ssh, scp through the tunnel ---------------------------------------------------------------
SSH_OPTS=(-i "$WORK/id" -o StrictHostKeyChecking=accept-new -o BatchMode=yes)
out=$("$TUNNEL" ssh root@node-17 -- "${SSH_OPTS[@]}" 'echo hello from $(hostname); exit 7' 2>&1); status=$?
if [ "$status" = 7 ] && grep -q 'hello from' <<<"$out"; then pass "tunnel ssh runs a command and returns its output and exit status"; else fail "tunnel ssh (status $status)" "$out"; fi
if ssh-keygen -F node-17.tunnel -f "$HOME/.ssh/known_hosts.tunnel" | grep -q ssh-ed25519; then pass "the host key is recorded under the node's name"; else fail "known_hosts entry" "$(cat "$HOME/.ssh/known_hosts.tunnel" 2>&1)"; fi

head -c 100000000 /dev/urandom >"$WORK/big"
PROXY="$(printf '%q' "$TUNNEL") proxy %h ssh"
if out=$(scp -q "${SSH_OPTS[@]}" -o UserKnownHostsFile="$HOME/.ssh/known_hosts.tunnel" -o "ProxyCommand=$PROXY" \
        "$WORK/big" "root@node-17.tunnel:$WORK/big.copy" 2>&1) \
    && [ "$(sha256sum <"$WORK/big")" = "$(sha256sum <"$WORK/big.copy")" ]; then
    pass "100 MB copied with scp through tunnel proxy arrives with the same SHA-256"
else
    fail "scp 100 MB" "$out"
fi
rm -f "$WORK/big" "$WORK/big.copy"

"$TUNNEL" ssh-config >"$HOME/.ssh/config"
# ssh reads ~ from the password database, not $HOME: point it at the test's files explicitly.
out=$(ssh -F "$HOME/.ssh/config" -o UserKnownHostsFile="$HOME/.ssh/known_hosts.tunnel" "${SSH_OPTS[@]}" root@node-17.tunnel 'echo via-ssh-config' 2>&1)
if grep -q via-ssh-config <<<"$out"; then pass "plain ssh node-17.tunnel works with the ssh-config block"; else fail "ssh-config block" "$out"; fi

# --- kubectl against the k3s API stand-in --------------------------------------------------------
KUBECONFIG_FILE="$WORK/kube/kubeconfig"
out=$("$TUNNEL" kubectl node-17 --kubeconfig "$KUBECONFIG_FILE" -- get nodes 2>&1)
if grep -q 'node-17' <<<"$out"; then pass "tunnel kubectl get nodes"; else fail "tunnel kubectl get nodes" "$out"; fi
out=$("$TUNNEL" kubectl node-17 --kubeconfig "$KUBECONFIG_FILE" -- exec demo -- echo hello 2>&1)
if [ "$out" = hello ]; then pass "tunnel kubectl exec (an upgraded connection)"; else fail "tunnel kubectl exec" "$out"; fi
start "$WORK/logs.log" "$TUNNEL" kubectl node-17 --kubeconfig "$KUBECONFIG_FILE" -- logs -f demo
LOGS_PID=$LAST_PID
if timeout 20 bash -c "tail -n +1 -F '$WORK/logs.log' 2>/dev/null | grep -m2 . | wc -l | grep -q 2"; then pass "tunnel kubectl logs -f streams and stays open"; else fail "tunnel kubectl logs -f" "$(cat "$WORK/logs.log")"; fi
kill "$LOGS_PID" 2>/dev/null
FORWARD_PORT=$(free_port)
start "$WORK/pf.log" "$TUNNEL" kubectl node-17 --kubeconfig "$KUBECONFIG_FILE" -- port-forward pod/demo "$FORWARD_PORT:80"
PF_PID=$LAST_PID
if wait_for_line "$WORK/pf.log" "Forwarding from" 20 && out=$(curl -s --max-time 10 "http://127.0.0.1:$FORWARD_PORT/") && grep -q 'hello from demo' <<<"$out"; then
    pass "tunnel kubectl port-forward"
else
    fail "tunnel kubectl port-forward" "$(cat "$WORK/pf.log") $out"
fi
kill "$PF_PID" 2>/dev/null

# --- refusals: one clear line and a non-zero exit -----------------------------------------------
expect_refusal() {
    local name=$1 pattern=$2; shift 2
    local out status
    out=$(: | "$@" 2>&1); status=$?
    if [ "$status" != 0 ] && grep -qE "$pattern" <<<"$out" && [ "$(wc -l <<<"$out")" -le 2 ]; then pass "$name"; else fail "$name (status $status)" "$out"; fi
}
expect_refusal "an unknown node is named" "node-99 is not connected" "$TUNNEL" proxy node-99 ssh
expect_refusal "an unknown service is named" "offers no service \"smtp\"" "$TUNNEL" proxy node-17 smtp
expect_refusal "an unknown config key is named with a suggestion" 'unknown key "service".*did you mean "services"' \
    env TUNNEL_CONFIG= bash -c "printf 'gateway: 127.0.0.1:1\nservice:\n  ssh: 127.0.0.1:22\n' >'$WORK/bad.yaml'; '$TUNNEL' client --config '$WORK/bad.yaml'"
expect_refusal "a missing certificate file is named, with how to enroll" "$WORK/nope.crt.*--token" \
    "$TUNNEL" client --gateway 127.0.0.1:1 --cert "$WORK/nope.crt" --key "$WORK/node/node.key" --gateway-ca "$WORK/node/gateway-ca.crt" --service ssh=127.0.0.1:22
expect_refusal "an operator certificate cannot run a node client" "not a node certificate" \
    "$TUNNEL" client --gateway 127.0.0.1:1 --cert "$HOME/.config/tunnel/operator.crt" --key "$HOME/.config/tunnel/operator.key" --gateway-ca "$WORK/node/gateway-ca.crt" --service ssh=127.0.0.1:22
expect_refusal "a node certificate cannot act as an operator" "cannot connect as an operator" \
    "$TUNNEL" nodes --cert "$WORK/node/node.crt" --key "$WORK/node/node.key"
# Another fleet's gateway, briefly, to get an operator certificate from a foreign CA.
OTHER_PORT=$(free_port)
start "$WORK/other.log" "$TUNNEL" gateway --listen "127.0.0.1:$OTHER_PORT" --data-dir "$WORK/other"
OTHER_PID=$LAST_PID
wait_for_line "$WORK/other.log" "admin socket open" 10
"$TUNNEL" user add mallory --role admin --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/mallory.yaml" --admin-socket "$WORK/other/admin.sock" >/dev/null 2>&1
kill "$OTHER_PID"
"$TUNNEL" login "$WORK/mallory.yaml" --config-dir "$WORK/mallory" >/dev/null 2>&1
expect_refusal "a certificate from another CA is refused" "refused|certificate" \
    "$TUNNEL" nodes --cert "$WORK/mallory/operator.crt" --key "$WORK/mallory/operator.key"

expect_refusal "a used token is refused, saying so" "already used" \
    "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$TOKEN" \
    --cert "$WORK/thief/node.crt" --key "$WORK/thief/node.key" --gateway-ca "$WORK/thief/ca.crt" --service ssh=127.0.0.1:22
expect_refusal "a token checked against the wrong CA pin gives the gateway nothing" "pinned CA hash" \
    "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "${TOKEN%.*}.$(printf '%064d' 0)" \
    --cert "$WORK/pin/node.crt" --key "$WORK/pin/node.key" --gateway-ca "$WORK/pin/ca.crt" --service ssh=127.0.0.1:22

# --- policy and revocation ---------------------------------------------------------------------------
check "user add vendor with a policy role" \
    "$TUNNEL" user add vendor --role vendor-acme --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/vendor.yaml"
"$TUNNEL" login "$WORK/vendor.yaml" --config-dir "$WORK/vendor" >/dev/null
VENDOR=(--config "$WORK/vendor/operator.yaml")
out=$(printf 'abc' | "$TUNNEL" proxy node-17 reverse "${VENDOR[@]}" 2>&1)
if [ "$out" = cba ]; then pass "the vendor may open what its role allows"; else fail "vendor allowed stream" "$out"; fi
expect_refusal "the vendor is denied ssh, with the rule named" "vendor-acme.*reverse" "$TUNNEL" proxy node-17 ssh "${VENDOR[@]}"
out=$("$TUNNEL" node ls 2>&1)
if grep -qE 'node-17 +online +site=plant-a' <<<"$out"; then pass "tunnel node ls shows the node with labels and certificate expiry"; else fail "node ls" "$out"; fi
check "user revoke" "$TUNNEL" user revoke vendor
expect_refusal "a revoked operator is refused" "revoked" "$TUNNEL" nodes "${VENDOR[@]}"

# --- device logs: the last lines, following across a rotation, a source the node does not serve ---
mkdir -p "$WORK/logs"
seq -f 'app line %g' 1 20 >"$WORK/logs/app.log"
out=$("$TUNNEL" logs node-17 app -n 5 2>&1)
if [ "$out" = "$(seq -f 'app line %g' 16 20)" ]; then pass "tunnel logs -n 5 prints the last 5 lines"; else fail "tunnel logs -n 5" "$out"; fi
# Output to a file, as `start` gives it; logrotate's way: rename, the writer's last line still
# goes to the old file, then a new file.
start "$WORK/follow.log" "$TUNNEL" logs node-17 app -f -n 1
FOLLOW_PID=$LAST_PID
if wait_for_line "$WORK/follow.log" "app line 20" 10 "$FOLLOW_PID"; then
    echo "before rotation" >>"$WORK/logs/app.log"
    wait_for_line "$WORK/follow.log" "before rotation" 10 "$FOLLOW_PID"
    mv "$WORK/logs/app.log" "$WORK/logs/app.log.1"
    echo "late line in the rotated file" >>"$WORK/logs/app.log.1"
    echo "after rotation" >"$WORK/logs/app.log"
fi
if wait_for_line "$WORK/follow.log" "after rotation" 10 "$FOLLOW_PID" \
    && [ "$(cat "$WORK/follow.log")" = "$(printf 'app line 20\nbefore rotation\nlate line in the rotated file\nafter rotation')" ]; then
    pass "tunnel logs -f follows across a rotation, every line once and in order"
else
    fail "tunnel logs -f across a rotation" "$(cat "$WORK/follow.log")"
fi
kill "$FOLLOW_PID" 2>/dev/null
if timeout 10 tail --pid="$FOLLOW_PID" -f /dev/null; then pass "tunnel logs -f ends on a signal"; else fail "tunnel logs -f still runs after SIGTERM"; fi
expect_refusal "a log source the node does not serve is refused, naming the ones it does" \
    'no log source "shadow"; it has: app' "$TUNNEL" logs node-17 shadow

# --- the client survives the gateway being killed and restarted --------------------------------
kill -9 "$GATEWAY_PID"
wait "$GATEWAY_PID" 2>/dev/null
wait_for_line "$WORK/client.log" "gateway unreachable" 60 || fail "client notices the gateway is gone" "$(tail -5 "$WORK/client.log")"
CONNECTS_BEFORE=$(grep -c "connected to the gateway" "$WORK/client.log")
GATEWAY_LOG="$WORK/gateway2.log"
start "$GATEWAY_LOG" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data" --policy "$WORK/policy.yaml"
GATEWAY_PID=$LAST_PID
wait_for_line "$GATEWAY_LOG" "gateway listening" 10
RESTARTED=$(date +%s%N)
if timeout 10 bash -c "until [ \$(grep -c 'connected to the gateway' '$WORK/client.log') -gt $CONNECTS_BEFORE ]; do tail -n0 -F '$WORK/client.log' 2>/dev/null | grep -q -m1 'connected to the gateway'; done"; then
    BACK_MS=$(( ($(date +%s%N) - RESTARTED) / 1000000 ))
    if [ "$BACK_MS" -lt 5000 ]; then pass "client is back ${BACK_MS} ms after the gateway returned"; else fail "client back within 5 s (took ${BACK_MS} ms)"; fi
else
    fail "client reconnects after a gateway restart" "$(tail -5 "$WORK/client.log")"
fi
out=$("$TUNNEL" ssh root@node-17 -- "${SSH_OPTS[@]}" 'echo again' 2>&1)
if grep -q again <<<"$out"; then pass "ssh works again after the restart"; else fail "ssh after restart" "$out"; fi
expect_refusal "the revocation survived the restart" "revoked" "$TUNNEL" nodes "${VENDOR[@]}"

# --- a half-open link is found on both sides, in two network namespaces of our own ---------------
# The link between the namespaces is cut (the node's veth goes down, taking its peer's carrier
# with it), as when a cable is pulled or the far side loses power: no FIN, no RST, just silence.
# Keepalive is 2 s here, so both sides must give up after 3 silent intervals (6 s), well inside
# the bound of this wait.
NS_GW=tnl-gw-$$ NS_NODE=tnl-node-$$
e2e_on_exit() { ip netns del "$NS_GW" 2>/dev/null; ip netns del "$NS_NODE" 2>/dev/null; }
if ip netns add "$NS_GW" 2>/dev/null && ip netns add "$NS_NODE"; then
    ip link add veth-gw netns "$NS_GW" type veth peer name veth-node netns "$NS_NODE"
    ip -n "$NS_GW" addr add 10.213.0.1/24 dev veth-gw
    ip -n "$NS_NODE" addr add 10.213.0.2/24 dev veth-node
    for ns in "$NS_GW" "$NS_NODE"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_GW" link set veth-gw up
    ip -n "$NS_NODE" link set veth-node up
    "$TUNNEL" ca init --dir "$WORK/data-ns/pki" --gateway-ip 10.213.0.1 >/dev/null
    start "$WORK/gateway-ns.log" ip netns exec "$NS_GW" "$TUNNEL" gateway --listen 10.213.0.1:7443 \
        --data-dir "$WORK/data-ns" --keepalive-interval 2s
    wait_for_line "$WORK/gateway-ns.log" "admin socket open" 10
    NS_TOKEN=$("$TUNNEL" token create --node node-ns --admin-socket "$WORK/data-ns/admin.sock" 2>/dev/null)
    start "$WORK/client-ns.log" ip netns exec "$NS_NODE" "$TUNNEL" client --gateway 10.213.0.1:7443 --token "$NS_TOKEN" \
        --cert "$WORK/node-ns/node.crt" --key "$WORK/node-ns/node.key" --gateway-ca "$WORK/node-ns/gateway-ca.crt" \
        --service ssh=127.0.0.1:22 --keepalive-interval 2s
    if wait_for_line "$WORK/client-ns.log" "connected to the gateway" 15; then
        ip -n "$NS_NODE" link set veth-node down
        CUT=$(date +%s)
        if wait_for_line "$WORK/gateway-ns.log" "keepalive-timeout.*node disconnected" 30; then
            pass "the gateway declares a half-open node gone after $(( $(date +%s) - CUT )) s (keepalive 2 s × 3)"
        else
            fail "gateway detects a half-open link" "$(tail -5 "$WORK/gateway-ns.log")"
        fi
        if wait_for_line "$WORK/client-ns.log" "gateway unreachable" 30; then
            pass "the client declares a half-open gateway gone after $(( $(date +%s) - CUT )) s and retries"
        else
            fail "client detects a half-open link" "$(tail -5 "$WORK/client-ns.log")"
        fi
    else
        fail "client connects across namespaces" "$(cat "$WORK/client-ns.log")"
    fi
else
    echo "skip - network namespaces are not available here (half-open link test)"
fi

# --- a node whose clock reads 1970 (no RTC after a cold boot) enrolls and connects ----------------
# faketime (libfaketime) makes only this client see 1970: its wall clock; its timers keep the real
# monotonic clock. The wrapper forks the client, so both PIDs are ended at the end.
if command -v faketime >/dev/null; then
    CLOCK_TOKEN=$("$TUNNEL" token create --node node-1970 2>/dev/null)
    start "$WORK/client-1970.log" env FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "@1970-01-02 00:00:00" \
        "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$CLOCK_TOKEN" \
        --cert "$WORK/node-1970/node.crt" --key "$WORK/node-1970/node.key" --gateway-ca "$WORK/node-1970/ca.crt" --service ssh=127.0.0.1:22
    FAKETIME_PID=$LAST_PID
    if wait_for_line "$WORK/client-1970.log" "connected to the gateway" 30 && grep -q "clock is wrong" "$WORK/client-1970.log"; then
        pass "a node whose clock reads 1970 is told so, learns the gateway's time, enrolls and connects"
    else
        fail "a node with a 1970 clock" "$(cat "$WORK/client-1970.log")"
    fi
    CLIENT_1970_PID=$(pgrep -P "$FAKETIME_PID")
    kill $CLIENT_1970_PID "$FAKETIME_PID" 2>/dev/null
else
    fail "faketime is missing (scripts/setup.sh installs it)"
fi

# --- the audit trail: a scenario checked against its own ground truth, then crashes -------------
AUDIT_DIR="$WORK/data/audit"
ADMIN_SOCKET="$WORK/data/admin.sock"
LAST_SEQ=$(python3 -c 'import glob,json,sys; print(max([json.loads(l)["seq"] for p in glob.glob(sys.argv[1]+"/audit-*.jsonl") for l in open(p) if l.strip()] or [0]))' "$AUDIT_DIR")
EXPECTED="$WORK/expected-audit"
: >"$EXPECTED"
"$TUNNEL" user add vendor2 --role vendor-acme --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/vendor2.yaml" >/dev/null 2>&1
echo "event user_add outcome=ok" >>"$EXPECTED"
"$TUNNEL" login "$WORK/vendor2.yaml" --config-dir "$WORK/vendor2" >/dev/null 2>&1
for operator_config in "" "$WORK/vendor2/operator.yaml"; do
    who=alice; [ -n "$operator_config" ] && who=vendor2
    printf 'abc' | "$TUNNEL" proxy node-17 reverse ${operator_config:+--config "$operator_config"} 2>&1 | cat >/dev/null
    echo "open $who node-17 reverse" >>"$EXPECTED"
done
: | "$TUNNEL" proxy node-17 ssh --config "$WORK/vendor2/operator.yaml" 2>&1 | cat >/dev/null
echo "deny vendor2 node-17 ssh denied" >>"$EXPECTED"
: | "$TUNNEL" proxy node-99 ssh 2>&1 | cat >/dev/null
echo "deny alice node-99 ssh unavailable" >>"$EXPECTED"
"$TUNNEL" ssh root@node-17 -- "${SSH_OPTS[@]}" true >/dev/null 2>&1
echo "open alice node-17 ssh" >>"$EXPECTED"
"$TUNNEL" logs node-17 app -n 1 >/dev/null 2>&1
echo "open alice node-17 logs" >>"$EXPECTED"
"$TUNNEL" logs node-17 shadow >/dev/null 2>&1
echo "open alice node-17 logs" >>"$EXPECTED"   # admitted by the policy; the node refuses the source
SCENARIO_FORWARD_PORT=$(free_port)
start "$WORK/scenario-forward.log" "$TUNNEL" forward node-17 reverse --listen "127.0.0.1:$SCENARIO_FORWARD_PORT"
SCENARIO_FORWARD_PID=$LAST_PID
wait_for_line "$WORK/scenario-forward.log" "^forwarding" 10
out=$(python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(b"xyz"); s.shutdown(socket.SHUT_WR); print(s.recv(100).decode())' "$SCENARIO_FORWARD_PORT" 2>&1)
[ "$out" = zyx ] || fail "a forwarded connection in the audit scenario" "$out $(cat "$WORK/scenario-forward.log")"
echo "open alice node-17 reverse" >>"$EXPECTED"
kill "$SCENARIO_FORWARD_PID"
printf 'echo recorded-$((6*7))\nexit 5\n' | "$TUNNEL" shell node-17 >"$WORK/shell.out" 2>&1; status=$?
if [ "$status" = 5 ] && grep -q recorded-42 "$WORK/shell.out"; then pass "tunnel shell runs a login shell on the node and returns its exit status"; else fail "tunnel shell (status $status)" "$(cat "$WORK/shell.out")"; fi
echo "open alice node-17 shell" >>"$EXPECTED"
"$TUNNEL" user revoke vendor2 >/dev/null 2>&1
echo "event revoke outcome=ok" >>"$EXPECTED"
"$TUNNEL" audit ls --dir "$AUDIT_DIR" --admin-socket "$ADMIN_SOCKET" >"$WORK/audit-ls.txt" 2>&1
echo "event audit_read outcome=ok" >>"$EXPECTED"
if grep -q "vendor2 *node-17 *ssh *denied" "$WORK/audit-ls.txt"; then pass "tunnel audit ls lists streams and denials"; else fail "audit ls" "$(cat "$WORK/audit-ls.txt")"; fi
# The recording: the hash in the close record matches the file, the real asciinema plays it
# (under script(1): asciinema wants a terminal), and so does tunnel audit replay.
read -r SHELL_STREAM RECORDING RECORDED_SHA < <(python3 -c '
import glob, json, sys
for path in sorted(glob.glob(sys.argv[1] + "/audit-*.jsonl")):
    for line in open(path):
        record = json.loads(line)
        if record["type"] == "stream_close" and record.get("service") == "shell":
            found = (record["stream"], record.get("recording", "-"), record.get("recording_sha256", "-"))
print(*found)' "$AUDIT_DIR")
if [ "$(sha256sum <"$AUDIT_DIR/recordings/$RECORDING" | cut -d' ' -f1)" = "$RECORDED_SHA" ]; then pass "the shell recording's SHA-256 matches its audit record"; else fail "recording hash" "$RECORDING $RECORDED_SHA"; fi
out=$(timeout 30 script -qec "asciinema play -s 20 '$AUDIT_DIR/recordings/$RECORDING'" /dev/null 2>&1)
if grep -q recorded-42 <<<"$out"; then pass "the real asciinema plays the recorded session"; else fail "asciinema play" "$out"; fi
out=$("$TUNNEL" audit replay "$SHELL_STREAM" --dir "$AUDIT_DIR" --admin-socket "$ADMIN_SOCKET" --speed 20 2>&1)
if grep -q recorded-42 <<<"$out"; then pass "tunnel audit replay plays it"; else fail "audit replay" "$out"; fi
echo "event audit_read outcome=ok" >>"$EXPECTED"
check "every action of the scenario is in the audit log exactly once, with every field" \
    python3 "$ROOT/Tests/EndToEnd/audit-check.py" "$AUDIT_DIR" "$LAST_SEQ" "$EXPECTED"

# kill -9 during live streams, three times: afterwards every stream still has one open and one close.
for round in 1 2 3; do
    OPENS=$(grep -c "stream open" "$GATEWAY_LOG")
    # The stream's stdin is a FIFO whose only writer is this shell's fd 8: it stays open, without a
    # helper process, until fd 8 is closed. (tunnel proxy wants pipes, hence the cat.) The proxy
    # ends by itself when its gateway dies.
    mkfifo "$WORK/hold-$round.fifo"
    exec 8<>"$WORK/hold-$round.fifo"
    ( "$TUNNEL" proxy node-17 reverse <"$WORK/hold-$round.fifo" 2>&1 | cat >"$WORK/hold-$round.log" ) &
    HOLD_PID=$!
    PIDS+=("$HOLD_PID")
    wait_for_lines "$GATEWAY_LOG" "stream open" $((OPENS + 1)) 15 || fail "round $round: a stream to hold open" "$(tail -3 "$GATEWAY_LOG")"
    CONNECTS_BEFORE=$(grep -c "connected to the gateway" "$WORK/client.log")
    kill -9 "$GATEWAY_PID"
    wait "$GATEWAY_PID" 2>/dev/null
    GATEWAY_LOG="$WORK/gateway-crash-$round.log"
    start "$GATEWAY_LOG" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data" --policy "$WORK/policy.yaml"
    GATEWAY_PID=$LAST_PID
    wait_for_line "$GATEWAY_LOG" "admin socket open" 30 || fail "round $round: gateway restarts after kill -9" "$(cat "$GATEWAY_LOG")"
    wait_for_lines "$WORK/client.log" "connected to the gateway" $((CONNECTS_BEFORE + 1)) 40 || fail "round $round: client back" "$(tail -3 "$WORK/client.log")"
    exec 8>&-
    timeout 30 tail --pid="$HOLD_PID" -f /dev/null || fail "round $round: the held stream ends with its gateway"
done
if grep -q "audit log recovered after an unclean stop" "$GATEWAY_LOG"; then pass "after kill -9 the gateway recovers its audit log"; else fail "audit recovery" "$(cat "$GATEWAY_LOG")"; fi

# --- SIGTERM drains and exits cleanly ----------------------------------------------------------
kill -TERM "$GATEWAY_PID"
if timeout 40 tail --pid="$GATEWAY_PID" -f /dev/null; then pass "gateway exits on SIGTERM after draining"; else fail "gateway SIGTERM"; fi

# After the clean stop: the whole log verifies and ends with a clean close, and the crashes left
# no stream without exactly one close.
out=$("$TUNNEL" audit verify "$AUDIT_DIR" --closed 2>&1)
if grep -q "^OK" <<<"$out"; then pass "tunnel audit verify: the log survives three kill -9 and closes cleanly"; else fail "audit verify" "$out"; fi
: >"$WORK/expected-none"
out=$(python3 "$ROOT/Tests/EndToEnd/audit-check.py" "$AUDIT_DIR" 999999999 "$WORK/expected-none" 2>&1)
if [ $? = 0 ] && [ "$(cat "$AUDIT_DIR"/audit-*.jsonl | grep -c '"outcome":"gateway_crash"')" -ge 3 ]; then
    pass "every stream has exactly one open and one close record; streams cut by kill -9 are closed as gateway_crash"
else
    fail "stream records after crashes" "$out"
fi
check "tunnel audit export writes a bundle that verify accepts on its own" \
    bash -c "'$TUNNEL' audit export --dir '$AUDIT_DIR' --since 1h --out '$WORK/evidence.tar' 2>&1 | grep -q wrote || exit 1; '$TUNNEL' audit verify '$WORK/evidence.tar'"
# The audit console's browser tests (Tests/EndToEnd/console.sh) read this scenario.
if [ -n "${AUDIT_SCENARIO_OUT:-}" ]; then rm -rf "$AUDIT_SCENARIO_OUT/audit"; mkdir -p "$AUDIT_SCENARIO_OUT"; cp -r "$AUDIT_DIR" "$AUDIT_SCENARIO_OUT/audit"; fi
cp -r "$AUDIT_DIR" "$WORK/tampered"
python3 - "$WORK/tampered" <<'TAMPER'
import glob, sys
path = sorted(glob.glob(sys.argv[1] + "/audit-*.jsonl"))[0]
lines = open(path).read().split("\n")
lines[3] = lines[3].replace('"node-17"', '"node-18"') if '"node-17"' in lines[3] else lines[3].replace('"type":"', '"type":"x')
open(path, "w").write("\n".join(lines))
TAMPER
out=$("$TUNNEL" audit verify "$WORK/tampered" 2>&1); status=$?
if [ "$status" != 0 ] && grep -q "FAILED.*seq" <<<"$out"; then pass "a changed record is found and named by tunnel audit verify"; else fail "tamper detection (status $status)" "$out"; fi
