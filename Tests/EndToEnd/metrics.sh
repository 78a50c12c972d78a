#!/usr/bin/env bash
# End to end: a real Prometheus (Debian's package, run here on a free loopback port with a
# generated config and its own storage directory, never the packaged service) scrapes the
# gateway's --metrics-listen endpoint, and a query of its HTTP API sees tunnel_nodes_online
# equal to the number of nodes connected, and follows when a node stops. Also: /healthz and
# /readyz answer, and promtool checks the alert rules shipped in deploy/kubernetes/ (Prometheus
# loads them too), and a client's own endpoint reports its session. Every process ended by PID.
#   Tests/EndToEnd/metrics.sh [path/to/tunnel]      (default: .build/debug/tunnel)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin metrics "${1:-}" prometheus promtool curl python3
NODES=2

# Polls URL until its body matches PATTERN, at most SECONDS (Prometheus scrapes on its own clock,
# so there is no line to wait for); prints the last body.
poll_until() {
    local url=$1 pattern=$2 seconds=$3 body="" deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        body=$(curl -sS --max-time 2 "$url" 2>&1) && grep -qE "$pattern" <<<"$body" && { echo "$body"; return 0; }
        sleep 0.5
    done
    echo "$body"
    return 1
}

# --- promtool: the example alert rules are valid -------------------------------------------
out=$(promtool check rules "$ROOT/deploy/kubernetes/alerts.yaml" 2>&1) && pass "promtool check rules deploy/kubernetes/alerts.yaml" || fail "promtool check rules" "$out"

# --- a gateway with metrics, two nodes ------------------------------------------------------
GATEWAY_PORT=$(free_port)
METRICS_PORT=$(free_port)
ADMIN=(--admin-socket "$WORK/data/admin.sock")
start "$WORK/gateway.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data" --metrics-listen "127.0.0.1:$METRICS_PORT"
GATEWAY_PID=$LAST_PID
wait_for_line "$WORK/gateway.log" "admin socket open" 15 "$GATEWAY_PID" || { fail "gateway started" "$(cat "$WORK/gateway.log")"; exit 1; }
METRICS="http://127.0.0.1:$METRICS_PORT"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$METRICS/healthz")" = 200 ] && pass "/healthz answers 200" || fail "/healthz"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$METRICS/readyz")" = 200 ] && pass "/readyz answers 200 (listening, store and audit log fine)" || fail "/readyz" "$(curl -s "$METRICS/readyz")"

CLIENT_METRICS_PORT=$(free_port)
for index in $(seq 1 $NODES); do
    token=$("$TUNNEL" token create --node "node-$index" "${ADMIN[@]}" 2>>"$WORK/token.err")
    extra=()
    [ "$index" = 1 ] && extra=(--metrics-listen "127.0.0.1:$CLIENT_METRICS_PORT")
    start "$WORK/client-$index.log" "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$token" \
        --cert "$WORK/node-$index/node.crt" --key "$WORK/node-$index/node.key" --gateway-ca "$WORK/node-$index/gateway-ca.crt" \
        --service dummy=127.0.0.1:9 "${extra[@]}"
done
for index in $(seq 1 $NODES); do
    wait_for_line "$WORK/client-$index.log" "connected to the gateway" 20 || fail "node-$index connected" "$(cat "$WORK/client-$index.log")"
done
out=$(curl -sS "$METRICS/metrics")
if grep -qx "tunnel_nodes_online $NODES.0" <<<"$out" && grep -q '^# TYPE tunnel_handshakes_total counter' <<<"$out" \
    && grep -q '^tunnel_certificate_expiry_timestamp_seconds{certificate="node_ca"} ' <<<"$out"; then
    pass "/metrics: tunnel_nodes_online $NODES, handshake counters, certificate expiry"
else
    fail "/metrics content" "$out"
fi
out=$(curl -sS "http://127.0.0.1:$CLIENT_METRICS_PORT/metrics")
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CLIENT_METRICS_PORT/readyz")
if grep -qx 'tunnel_client_session_up 1.0' <<<"$out" && [ "$code" = 200 ]; then
    pass "the client's own --metrics-listen: tunnel_client_session_up 1, /readyz 200"
else
    fail "client metrics" "$code $out"
fi
out=$(curl -sS -o /dev/null -w '%{http_code} %{content_type}' "$METRICS/metrics")
[ "$out" = "200 text/plain; version=0.0.4; charset=utf-8" ] && pass "/metrics is the text exposition format 0.0.4" || fail "/metrics content type" "$out"

# --- Prometheus scrapes it; its query API sees the fleet's size ---------------------------
PROM_PORT=$(free_port)
mkdir -p "$WORK/prometheus"
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/kubernetes/alerts.yaml
scrape_configs:
  - job_name: tunnel-gateway
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
YAML
out=$(promtool check config "$WORK/prometheus.yml" 2>&1) && pass "promtool check config (the scrape config and the rules it loads)" || fail "promtool check config" "$out"
start "$WORK/prometheus.log" prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn
PROM="http://127.0.0.1:$PROM_PORT"
if out=$(poll_until "$PROM/api/v1/query?query=tunnel_nodes_online" "\"value\":\[[0-9.]+,\"$NODES\"\]" 60); then
    pass "Prometheus' query API: tunnel_nodes_online = $NODES, the fleet's size"
else
    fail "Prometheus query tunnel_nodes_online" "$out
$(tail -n 5 "$WORK/prometheus.log")"
fi
out=$(poll_until "$PROM/api/v1/targets" '"health":"up"' 10) && pass "the scrape target is up" || fail "scrape target health" "$out"
out=$(poll_until "$PROM/api/v1/rules" '"name":"TunnelGatewayDown"' 10) && pass "Prometheus loaded the alert rules" || fail "rules loaded" "$out"

# --- a node leaves: the gauge follows ------------------------------------------------------
kill "${PIDS[1]}" 2>/dev/null
if out=$(poll_until "$PROM/api/v1/query?query=tunnel_nodes_online" "\"value\":\[[0-9.]+,\"$((NODES - 1))\"\]" 60); then
    pass "after one node stops, Prometheus sees tunnel_nodes_online = $((NODES - 1))"
else
    fail "nodes online after a node stopped" "$out"
fi
