#!/usr/bin/env bash
# Side-by-side latency of kubectl requests to a node's Kubernetes API (the stand-in of
# Tests/Fixtures/kube), three paths measured in the same run, interleaved, order rotated:
#   direct         kubectl with the stand-in's admin kubeconfig, straight to 127.0.0.1
#   pass-through   a long-running `tunnel forward NODE k3s` and the kubeconfig rewritten to it
#                  (TLS end to end, the node's k3s.yaml on the laptop)
#   impersonation  a long-running `tunnel kube-proxy` and the kubeconfig of `tunnel kubeconfig`
#                  (the node's kubernetes service: HTTP parsed at the gateway and the node)
# Each sample is one whole `kubectl get pods` (process start, discovery from a warm cache, one
# request) and one `kubectl exec demo -- echo hi` (an upgrade). Medians in milliseconds.
#   scripts/bench-kube.sh [--runs N] [--tunnel PATH]    (default 20 runs, .build/release/tunnel)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/e2e.sh
. "$ROOT/scripts/lib/e2e.sh"
RUNS=20 TUNNEL="$ROOT/.build/release/tunnel"
while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --tunnel) TUNNEL=$2; shift 2 ;;
        -h|--help) usage_from_header; exit 0 ;;
        *) echo "usage: $0 [--runs N] [--tunnel PATH]"; exit 2 ;;
    esac
done
e2e_begin bench-kube "$TUNNEL" python3 kubectl

start "$WORK/kube.log" python3 "$ROOT/Tests/Fixtures/kube/kube-apiserver-standin.py" --dir "$WORK/kube"
wait_for_line "$WORK/kube.log" "READY port=" 30 || die "the stand-in did not start" "$WORK/kube.log"
KUBE_PORT=$(grep -o 'READY port=[0-9]*' "$WORK/kube.log" | head -1 | cut -d= -f2)
GATEWAY_PORT=$(free_port)
cat >"$WORK/policy.yaml" <<'POLICY'
roles:
  ops:
    allow:
      - services: [k3s]
        nodes: ["*"]
        kubernetes: {groups: [edge-operators]}
POLICY
start "$WORK/gateway.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data" --policy "$WORK/policy.yaml"
wait_for_line "$WORK/gateway.log" "admin socket open" 10 || die "the gateway did not start" "$WORK/gateway.log"
ADMIN=(--admin-socket "$WORK/data/admin.sock")
"$TUNNEL" user add alice --role ops --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/alice.yaml" "${ADMIN[@]}" >/dev/null 2>&1
"$TUNNEL" login "$WORK/alice.yaml" >/dev/null || die "login failed"
TOKEN=$("$TUNNEL" token create --node node-17 "${ADMIN[@]}" 2>/dev/null)
start "$WORK/client.log" "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$TOKEN" \
    --cert "$WORK/node/node.crt" --key "$WORK/node/node.key" --gateway-ca "$WORK/node/gateway-ca.crt" \
    --service "k3s=127.0.0.1:$KUBE_PORT" --kubernetes "$WORK/kube/node-kubeconfig"
wait_for_line "$WORK/client.log" "connected to the gateway" 15 || die "the node did not connect" "$WORK/client.log"

FORWARD_PORT=$(free_port)
start "$WORK/forward.log" "$TUNNEL" forward node-17 k3s --listen "127.0.0.1:$FORWARD_PORT"
wait_for_line "$WORK/forward.log" "^forwarding" 10 || die "tunnel forward did not start" "$WORK/forward.log"
python3 - "$WORK/kube/kubeconfig" "$FORWARD_PORT" >"$WORK/forward.kubeconfig" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(re.sub(r"server: https://127.0.0.1:\d+", f"server: https://127.0.0.1:{sys.argv[2]}\n    tls-server-name: kubernetes", text), end="")
PY
PROXY_PORT=$(free_port)
start "$WORK/proxy.log" "$TUNNEL" kube-proxy --listen "127.0.0.1:$PROXY_PORT"
wait_for_line "$WORK/proxy.log" "^kube-proxy on" 10 || die "tunnel kube-proxy did not start" "$WORK/proxy.log"
"$TUNNEL" kubeconfig node-17 --proxy "127.0.0.1:$PROXY_PORT" -o "$WORK/impersonation.kubeconfig" >/dev/null || die "tunnel kubeconfig failed"

declare -A CONFIG=([direct]="$WORK/kube/kubeconfig" [pass-through]="$WORK/forward.kubeconfig" [impersonation]="$WORK/impersonation.kubeconfig")
PATHS=(direct pass-through impersonation)
# One sample: milliseconds of one kubectl run, or "fail".
sample() {
    local config=$1; shift
    local begin end
    begin=$(date +%s%N)
    if ! KUBECONFIG="$config" kubectl "$@" >/dev/null 2>"$WORK/stderr"; then
        echo fail
        { echo "$(basename "$config") kubectl $*:"; cat "$WORK/stderr"; } >>"$WORK/failures"
        return
    fi
    end=$(date +%s%N)
    echo $(( (end - begin) / 1000000 ))
}
for path in "${PATHS[@]}"; do  # warm each path's discovery cache
    KUBECONFIG="${CONFIG[$path]}" kubectl get pods >/dev/null 2>&1 || die "kubectl get pods fails on $path"
done
for ((run = 0; run < RUNS; run++)); do
    for ((i = 0; i < 3; i++)); do
        path=${PATHS[$(( (run + i) % 3 ))]}
        echo "$path get $(sample "${CONFIG[$path]}" get pods)" >>"$WORK/samples"
        echo "$path exec $(sample "${CONFIG[$path]}" exec demo -- echo hi)" >>"$WORK/samples"
    done
done
[ -s "$WORK/failures" ] && { echo "failed runs:"; sed 's/^/  /' "$WORK/failures"; }
python3 - "$WORK/samples" <<'PY'
import statistics, sys
samples = {}
for line in open(sys.argv[1]):
    path, what, value = line.split()
    samples.setdefault((path, what), []).append(value)
def median(path, what):
    values = [int(v) for v in samples[(path, what)] if v != "fail"]
    failed = len(samples[(path, what)]) - len(values)
    return (statistics.median(values) if values else float("nan")), failed
print("| path | kubectl get pods, ms | kubectl exec echo, ms | failures |")
print("|---|---:|---:|---:|")
for path in ("direct", "pass-through", "impersonation"):
    (get, f1), (ex, f2) = median(path, "get"), median(path, "exec")
    print(f"| {path} | {get:.0f} | {ex:.0f} | {f1 + f2} |")
base = {w: median("direct", w)[0] for w in ("get", "exec")}
for path in ("pass-through", "impersonation"):
    print(f"{path} / direct: get {median(path, 'get')[0] / base['get']:.2f}, exec {median(path, 'exec')[0] / base['exec']:.2f}")
PY
