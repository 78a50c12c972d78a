#!/usr/bin/env bash
# End to end: kubectl as the operator's own identity through the node's `kubernetes` service
# (docs/KUBERNETES.md). The real kubectl, the built `tunnel` binary as gateway, node client and
# operator CLI, and the Kubernetes API stand-in of Tests/Fixtures/kube (no k3s binary can run
# here), which authenticates the node's service-account token, honours impersonation only from
# it and applies a tiny RBAC table. Everything on loopback, every process ended by PID.
#   Tests/EndToEnd/kubernetes.sh [path/to/tunnel]      (default: .build/debug/tunnel)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin kubernetes "${1:-}" python3 openssl kubectl curl

# --- the node's API server, the gateway with a policy, operators in two roles, the node --------
start "$WORK/kube.log" python3 "$ROOT/Tests/Fixtures/kube/kube-apiserver-standin.py" --dir "$WORK/kube"
wait_for_line "$WORK/kube.log" "READY port=" 30 || fail "kube API stand-in started" "$(cat "$WORK/kube.log")"

GATEWAY_PORT=$(free_port)
ADMIN=(--admin-socket "$WORK/data/admin.sock")
cat >"$WORK/policy.yaml" <<'POLICY'
roles:
  admin:
    admin: true
    allow:
      - services: ["*"]
        nodes: ["*"]
  edge-ops:
    allow:
      - nodes: ["node-*"]
        kubernetes: {groups: [edge-operators]}
  vendor:
    allow:
      - services: [dummy]
        nodes: ["*"]
POLICY
start "$WORK/gateway.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data" --policy "$WORK/policy.yaml"
wait_for_line "$WORK/gateway.log" "admin socket open" 30 || fail "gateway started" "$(cat "$WORK/gateway.log")"
for who in alice:edge-ops bob:vendor; do
    "$TUNNEL" user add "${who%%:*}" --role "${who#*:}" --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost \
        --out "$WORK/${who%%:*}.yaml" "${ADMIN[@]}" >/dev/null 2>&1
    "$TUNNEL" login "$WORK/${who%%:*}.yaml" --config-dir "$WORK/${who%%:*}" >/dev/null
done
ALICE=(--config "$WORK/alice/operator.yaml")
BOB=(--config "$WORK/bob/operator.yaml")
TOKEN=$("$TUNNEL" token create --node node-17 "${ADMIN[@]}" 2>"$WORK/token.err")
start "$WORK/client.log" "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$TOKEN" \
    --cert "$WORK/node/node.crt" --key "$WORK/node/node.key" --gateway-ca "$WORK/node/gateway-ca.crt" \
    --kubernetes "$WORK/kube/node-kubeconfig"
if wait_for_line "$WORK/client.log" "connected to the gateway" 15; then
    pass "the node serves kubernetes with a service-account kubeconfig (token, CA)"
else
    fail "node client with --kubernetes" "$(cat "$WORK/client.log")"
fi

# --- role A: get and exec, not delete; its own identity whatever it claims -------------------
out=$("$TUNNEL" kubectl node-17 "${ALICE[@]}" -- get pods 2>&1)
if grep -qE '^demo +1/1 +Running' <<<"$out"; then pass "tunnel kubectl get pods works with no file from the node"; else fail "kubectl get pods as alice" "$out"; fi
out=$("$TUNNEL" kubectl node-17 "${ALICE[@]}" -- exec demo -- echo hello 2>&1)
if [ "$out" = hello ]; then pass "role A may exec (an upgraded connection through impersonation)"; else fail "kubectl exec as alice" "$out"; fi
# kubectl >= 1.31 upgrades to WebSocket; these switches make it use SPDY/3.1, as older ones do.
out=$(KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false "$TUNNEL" kubectl node-17 "${ALICE[@]}" -- exec demo -- echo spdy 2>&1)
if [ "$out" = spdy ] && grep -q "over SPDY/3.1" "$WORK/kube.log"; then pass "exec over SPDY/3.1 too"; else fail "exec over SPDY" "$out"; fi
out=$("$TUNNEL" kubectl node-17 "${ALICE[@]}" -- delete pod demo 2>&1)
if grep -q 'User "alice" cannot delete resource "pods"' <<<"$out"; then pass "role A may not delete: the cluster's RBAC refuses alice"; else fail "kubectl delete as alice" "$out"; fi
out=$("$TUNNEL" kubectl node-17 "${ALICE[@]}" -- --as=system:admin --as-group=system:masters auth whoami 2>&1)
if grep -qE '^Username +alice$' <<<"$out" && grep -qE '^Groups +\[edge-operators system:authenticated\]$' <<<"$out"; then
    pass "kubectl --as=system:admin still acts as alice in edge-operators"
else
    fail "--as is overridden" "$out"
fi

# --- the kubeconfig with no secrets, and the kube-proxy it names ------------------------------
PROXY_PORT=$(free_port)
"$TUNNEL" kubeconfig node-17 --proxy "127.0.0.1:$PROXY_PORT" -o "$WORK/kubeconfig" "${ALICE[@]}" >/dev/null 2>&1
if [ "$(stat -c %a "$WORK/kubeconfig")" = 600 ] && ! grep -qiE 'token|client-key|certificate-authority' "$WORK/kubeconfig"; then
    pass "tunnel kubeconfig writes a context per node and no secrets"
else
    fail "tunnel kubeconfig" "$(cat "$WORK/kubeconfig")"
fi
out=$("$TUNNEL" kubeconfig --all "${ALICE[@]}" 2>&1)
if grep -q 'name: node-17' <<<"$out"; then pass "tunnel kubeconfig --all lists the nodes that offer kubernetes"; else fail "kubeconfig --all" "$out"; fi
start "$WORK/kube-proxy.log" "$TUNNEL" kube-proxy --listen "127.0.0.1:$PROXY_PORT" "${ALICE[@]}"
wait_for_line "$WORK/kube-proxy.log" "^kube-proxy on" 30 || fail "kube-proxy started" "$(cat "$WORK/kube-proxy.log")"
export KUBECONFIG="$WORK/kubeconfig"
out=$(curl -sS --socks5-hostname "127.0.0.1:$PROXY_PORT" -X POST -H 'Content-Type: application/json' \
    -H 'Impersonate-User: system:admin' -H 'impersonate-group: system:masters' -H 'Authorization: Bearer forged' \
    --data '{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1"}' \
    http://node-17/apis/authentication.k8s.io/v1/selfsubjectreviews 2>&1)
if grep -q '"username": "alice"' <<<"$out" && ! grep -q system:masters <<<"$out"; then
    pass "forged Impersonate-* and Authorization headers are replaced: the API server sees alice"
else
    fail "forged headers" "$out"
fi
# A request the gateway cannot parse (Content-Length and chunked at once: request smuggling) is
# neither relayed unaudited nor answered: the gateway cuts the stream.
out=$(python3 - "$PROXY_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"\x05\x01\x00"); s.recv(2)
s.sendall(b"\x05\x01\x00\x03\x07node-17\x00\x50"); s.recv(10)
s.sendall(b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
print(repr(data))
PY
)
if [ "$out" = "b''" ] && "$TUNNEL" audit ls --events --dir "$WORK/data/audit" "${ADMIN[@]}" 2>&1 | grep -q 'stream_close.*cannot be audited'; then
    pass "an unparseable request is cut at the gateway, with the reason in the stream's close record"
else
    fail "unparseable request" "$out"
fi
FORWARD_PORT=$(free_port)
start "$WORK/pf.log" kubectl --context node-17 port-forward pod/demo "$FORWARD_PORT:80"
if wait_for_line "$WORK/pf.log" "Forwarding from 127.0.0.1:$FORWARD_PORT" 20 \
    && [ "$(curl -sS "http://127.0.0.1:$FORWARD_PORT/" 2>&1)" = "hello from demo" ]; then
    pass "kubectl port-forward through the kube-proxy and impersonation"
else
    fail "port-forward" "$(cat "$WORK/pf.log")"
fi
FORWARD_PORT=$(free_port)
start "$WORK/pf-spdy.log" env KUBECTL_PORT_FORWARD_WEBSOCKETS=false kubectl --context node-17 port-forward pod/demo "$FORWARD_PORT:80"
if wait_for_line "$WORK/pf-spdy.log" "Forwarding from 127.0.0.1:$FORWARD_PORT" 20 \
    && [ "$(curl -sS "http://127.0.0.1:$FORWARD_PORT/" 2>&1)" = "hello from demo" ] && grep -q "port-forward over SPDY/3.1" "$WORK/kube.log"; then
    pass "kubectl port-forward over SPDY/3.1 too"
else
    fail "port-forward over SPDY" "$(cat "$WORK/pf-spdy.log")"
fi
start "$WORK/logs.log" kubectl --context node-17 logs -f demo
if wait_for_lines "$WORK/logs.log" 'demo: tick' 2 20; then pass "kubectl logs -f streams through impersonation"; else fail "logs -f" "$(cat "$WORK/logs.log")"; fi
unset KUBECONFIG

# --- role B has no Kubernetes access ------------------------------------------------------------
out=$("$TUNNEL" kubectl node-17 "${BOB[@]}" -- get pods 2>&1); status=$?
if [ "$status" != 0 ] && grep -q 'kubernetes is not granted' <<<"$out"; then pass "role B has no Kubernetes access, and is told why"; else fail "kubectl as bob (status $status)" "$out"; fi

# --- the audit: one kube_request per API request, with user, groups and codes --------------------
"$TUNNEL" audit ls --service kubernetes --dir "$WORK/data/audit" "${ADMIN[@]}" >"$WORK/audit-ls.txt" 2>&1
if grep -q 'alice *node-17 *kubernetes' "$WORK/audit-ls.txt" && grep -q 'bob *node-17 *kubernetes *denied' "$WORK/audit-ls.txt"; then
    pass "tunnel audit ls --service kubernetes lists alice's streams and bob's denial"
else
    fail "audit ls --service kubernetes" "$(cat "$WORK/audit-ls.txt")"
fi
out=$(python3 - "$WORK/data/audit" "$WORK/kube.log" <<'PY'
import glob, json, re, sys
records = [json.loads(line) for path in sorted(glob.glob(sys.argv[1] + "/audit-*.jsonl")) for line in open(path)]
requests = [r for r in records if r["type"] == "kube_request"]
served = [l for l in open(sys.argv[2]) if re.search(r"impersonated-by=|refused \d+", l)]
problems = []
if len(requests) != len(served):
    problems.append(f"{len(requests)} kube_request records for {len(served)} requests the API server saw")
for line in served:
    if "impersonated-by=" in line and "user=alice groups=edge-operators,system:authenticated impersonated-by=" not in line:
        problems.append(f"the API server saw another identity: {line.strip()}")
for r in requests:
    if r.get("kube_user") != "alice" or r.get("kube_groups") != ["edge-operators"] or r.get("operator") != "alice":
        problems.append(f"wrong identity in {r}")
def find(**want):
    return [r for r in requests if all(r.get(k) == v for k, v in want.items())]
if not find(verb="delete", resource="pods", name="demo", namespace="default", code=403):
    problems.append("no delete pods/demo with 403")
if not find(subresource="exec", name="demo", code=101, command=["echo", "hello"]):
    problems.append("no exec of [echo, hello] with 101")
if not find(verb="list", resource="pods", code=200):
    problems.append("no list pods with 200")
if not find(subresource="log", code=200):
    problems.append("no logs -f with 200")
print("; ".join(problems) or f"ok {len(requests)}")
PY
)
if [[ "$out" == ok* ]]; then pass "the API server saw only alice in edge-operators, and the audit holds one kube_request per request ($out) with the codes"; else fail "kube_request records" "$out"; fi
"$TUNNEL" audit ls --service kubernetes --events --dir "$WORK/data/audit" "${ADMIN[@]}" >"$WORK/audit-events.txt" 2>&1
if grep -E 'kube_request .*code=403 .*kube_user=alice .*verb=delete' "$WORK/audit-events.txt" | grep -q 'name=demo'; then
    pass "tunnel audit ls --service kubernetes --events shows each request"
else
    fail "audit ls --events" "$(grep kube_request "$WORK/audit-events.txt" | head -5)"
fi

# --- a node whose credential is k3s.yaml's client certificate instead of a token ----------------
TOKEN=$("$TUNNEL" token create --node node-18 "${ADMIN[@]}" 2>"$WORK/token.err")
start "$WORK/client-18.log" "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$TOKEN" \
    --cert "$WORK/node-18/node.crt" --key "$WORK/node-18/node.key" --gateway-ca "$WORK/node-18/gateway-ca.crt" \
    --kubernetes "$WORK/kube/kubeconfig"
wait_for_line "$WORK/client-18.log" "connected to the gateway" 15 || fail "node-18 connected" "$(cat "$WORK/client-18.log")"
out=$("$TUNNEL" kubectl node-18 "${ALICE[@]}" -- auth whoami 2>&1)
if grep -qE '^Username +alice$' <<<"$out" && grep -q 'impersonated-by=admin' "$WORK/kube.log"; then
    pass "with k3s.yaml's client certificate the node impersonates alice too"
else
    fail "client-certificate node" "$out"
fi

# --- revoking the operator ends its live exec within 5 s ---------------------------------------
start "$WORK/exec-cat.log" bash -c 'exec "$@" < <(sleep 60)' _ "$TUNNEL" kubectl node-17 "${ALICE[@]}" -- exec -i demo -- cat
EXEC_PID=$LAST_PID
if wait_for_line "$WORK/kube.log" 'exec\?command=cat.*user=alice' 20; then
    "$TUNNEL" user revoke alice "${ADMIN[@]}" >/dev/null 2>&1
    REVOKED_AT=$(date +%s%N)
    if timeout 5 tail --pid="$EXEC_PID" -f /dev/null; then
        pass "revoking alice ends her live exec in $(( ($(date +%s%N) - REVOKED_AT) / 1000000 )) ms"
    else
        fail "revocation ends the live exec within 5 s" "$(cat "$WORK/exec-cat.log")"
    fi
else
    fail "a live exec -i cat started" "$(cat "$WORK/exec-cat.log")"
fi
