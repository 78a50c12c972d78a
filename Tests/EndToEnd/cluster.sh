#!/usr/bin/env bash
# End to end: a gateway cluster on loopback. A throwaway PostgreSQL (Debian's binaries, initdb in
# the work directory, scripts/lib/postgres.sh), three replicas on it with one shared PKI, nodes
# that know the replica list, a real sshd, the real ssh and scp, and a real Prometheus. Checks:
# operators on the two replicas that do not hold a node reach it (ssh, a 100 MB scp with the same
# SHA-256); revocations at one replica end live streams at the others within 5 s; a single-use
# token redeemed at all three at once gives one certificate; Prometheus sees the fleet; kill -9 of
# the holder brings its node back through the others within 30 s; the merged audit verifies and
# every stream has one open and one close. Every process is ended by its PID.
#   Tests/EndToEnd/cluster.sh [path/to/tunnel]      (default: .build/debug/tunnel)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
. "$ROOT/scripts/lib/postgres.sh"
. "$ROOT/scripts/lib/cluster.sh"
e2e_begin cluster "${1:-}" /usr/sbin/sshd ssh scp ssh-keygen sha256sum prometheus curl python3
e2e_on_exit() { postgres_stop; }
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"

# Polls CMD (a string for bash -c) until it succeeds, at most SECONDS; prints its last output.
poll() {
    local seconds=$1 command=$2 out="" deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        out=$(bash -c "$command" 2>&1) && { echo "$out"; return 0; }
        sleep 0.2
    done
    echo "$out"
    return 1
}

# --- the store and three replicas on one shared PKI ----------------------------------------
cluster_start 3 || { fail "PostgreSQL and three replicas started"; exit 1; }
pass "PostgreSQL on loopback and three replicas on it"

# --- sshd, and two nodes that know the replica list -----------------------------------------
SSH_PORT=$(free_port)
prepare_sshd "$SSH_PORT" "Subsystem sftp /usr/lib/openssh/sftp-server"
start "$WORK/sshd.log" /usr/sbin/sshd -D -e -f "$WORK/sshd_config"
wait_for_line "$WORK/sshd.log" "Server listening" 30 || fail "sshd started" "$(cat "$WORK/sshd.log")"
declare -A NODE_PID
start_node() {
    local name=$1 token
    token=$(admin 1 token create --node "$name") || return 1
    start "$WORK/$name.log" "$TUNNEL" client --gateway "$LIST" --server-name localhost --token "$token" \
        --cert "$WORK/$name/node.crt" --key "$WORK/$name/node.key" --gateway-ca "$WORK/$name/gateway-ca.crt" \
        --service "ssh=127.0.0.1:$SSH_PORT"
    NODE_PID[$name]=$LAST_PID
    wait_for_line "$WORK/$name.log" "connected to the gateway" 30 "$LAST_PID"
}
for name in node-1 node-2; do start_node "$name" || fail "$name enrolled and connected" "$(cat "$WORK/$name.log")"; done

# The replica holding node-1: the one whose log says it connected there.
HOLDER=$(poll 20 "$(declare -f holder_of); WORK=$WORK; h=\$(holder_of node-1); [ -n \"\$h\" ] && echo \$h")
if [ -n "$HOLDER" ]; then pass "node-1 connected to replica r$HOLDER of its list"; else fail "holder of node-1" "$(grep -h "node connected" "$WORK"/r*.log)"; HOLDER=1; fi
OTHERS=()
for index in 1 2 3; do [ "$index" != "$HOLDER" ] && OTHERS+=("$index"); done

# --- operators on the replicas that do not hold the node ------------------------------------
# TUNNEL_GATEWAY picks the replica, for `tunnel ssh` and the `tunnel proxy` it has ssh run.
admin 1 user add alice --role admin --gateway "127.0.0.1:${PORT[1]}" --server-name localhost --out "$WORK/alice.yaml" >/dev/null \
    && "$TUNNEL" login "$WORK/alice.yaml" >/dev/null || fail "alice's bundle"
SSH_OPTS=(-i "$WORK/id" -o StrictHostKeyChecking=accept-new -o BatchMode=yes)
for index in "${OTHERS[@]}"; do
    out=$(TUNNEL_GATEWAY="127.0.0.1:${PORT[$index]}" "$TUNNEL" ssh root@node-1 -- "${SSH_OPTS[@]}" 'echo hello via r'"$index"'; exit 3' 2>&1); status=$?
    if [ "$status" = 3 ] && grep -q "hello via r$index" <<<"$out"; then
        pass "tunnel ssh through r$index reaches node-1 on r$HOLDER (output and exit status)"
    else
        fail "tunnel ssh through r$index (status $status)" "$out"
    fi
done
head -c 100000000 /dev/urandom >"$WORK/big"
for index in "${OTHERS[@]}"; do
    proxy="$(printf '%q' "$TUNNEL") proxy --gateway 127.0.0.1:${PORT[$index]} %h ssh"
    if out=$(scp -q "${SSH_OPTS[@]}" -o UserKnownHostsFile="$HOME/.ssh/known_hosts.tunnel" -o "ProxyCommand=$proxy" \
            "$WORK/big" "root@node-1.tunnel:$WORK/big.copy" 2>&1) \
        && [ "$(sha256sum <"$WORK/big")" = "$(sha256sum <"$WORK/big.copy")" ]; then
        pass "100 MB scp through r$index to node-1 on r$HOLDER arrives with the same SHA-256"
    else
        fail "scp 100 MB through r$index" "$out"
    fi
    rm -f "$WORK/big.copy"
done
rm -f "$WORK/big"

# --- Prometheus scrapes all replicas and sees the fleet ------------------------------------
PROM_PORT=$(free_port)
mkdir -p "$WORK/prometheus"
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: tunnel-gateway
    static_configs:
      - targets: ["127.0.0.1:${METRICS[1]}", "127.0.0.1:${METRICS[2]}", "127.0.0.1:${METRICS[3]}"]
YAML
start "$WORK/prometheus.log" prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn
PROM_PID=$LAST_PID
query="http://127.0.0.1:$PROM_PORT/api/v1/query?query=sum(tunnel_nodes_online)"
if out=$(poll 60 "curl -sS --max-time 2 '$query' | grep -qE '\"value\":\[[0-9.]+,\"2\"\]' && curl -sS '$query'"); then
    pass "Prometheus scrapes the three replicas: sum(tunnel_nodes_online) = 2, the fleet's size"
else
    fail "Prometheus sum(tunnel_nodes_online)" "$out"
fi
kill "$PROM_PID" 2>/dev/null

# --- revocations at one replica end live streams at the others within 5 s ------------------
# live_stream INDEX NODE CONFIG-DIR: a `tunnel proxy` to NODE's ssh through replica INDEX, held
# open (its stdin is a sleeping process); prints its PID once the node's ssh banner came back.
live_stream() {
    local index=$1 node=$2 config=$3 log="$WORK/live-$1-$2-$RANDOM.log"
    sleep 600 | "$TUNNEL" proxy --config "$config" --gateway "127.0.0.1:${PORT[$index]}" "$node" ssh >"$log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_for_line "$log" "^SSH-2.0" 20 && echo "$pid"
}
# ends_within SECONDS PID...: true when every PID has exited within SECONDS (polled, bounded).
ends_within() {
    local seconds=$1; shift
    local deadline=$((SECONDS + seconds)) pid
    for pid in "$@"; do
        while kill -0 "$pid" 2>/dev/null; do [ $SECONDS -ge $deadline ] && return 1; sleep 0.1; done
    done
}
admin 1 user add bob --role admin --gateway "127.0.0.1:${PORT[1]}" --server-name localhost --out "$WORK/bob.yaml" >/dev/null \
    && "$TUNNEL" login "$WORK/bob.yaml" --config-dir "$WORK/bob" >/dev/null || fail "bob's bundle"
CUT_AT=2
AWAY=()
for index in 1 3; do [ "$index" != "$CUT_AT" ] && AWAY+=("$index"); done
streams=()
for index in "${AWAY[@]}"; do streams+=("$(live_stream "$index" node-1 "$WORK/bob/operator.yaml")"); done
if [ ${#streams[@]} = 2 ] && [ -n "${streams[0]}" ] && [ -n "${streams[1]}" ]; then
    started=$SECONDS
    admin "$CUT_AT" user revoke bob >/dev/null
    if ends_within 5 "${streams[@]}"; then pass "user revoke at r$CUT_AT ends bob's live streams held at r${AWAY[0]} and r${AWAY[1]} within 5 s ($((SECONDS - started)) s)"; else fail "user revoke propagation"; fi
else
    fail "bob's live streams opened" "$(cat "$WORK"/live-*.log 2>/dev/null)"
fi
streams=()
for index in "${AWAY[@]}"; do streams+=("$(live_stream "$index" node-2 "$HOME/.config/tunnel/operator.yaml")"); done
if [ ${#streams[@]} = 2 ] && [ -n "${streams[0]}" ] && [ -n "${streams[1]}" ]; then
    started=$SECONDS
    admin "$CUT_AT" node revoke node-2 >/dev/null
    if ends_within 5 "${streams[@]}"; then pass "node revoke at r$CUT_AT ends node-2's live streams held at r${AWAY[0]} and r${AWAY[1]} within 5 s ($((SECONDS - started)) s)"; else fail "node revoke propagation"; fi
else
    fail "live streams to node-2 opened" "$(cat "$WORK"/live-*.log 2>/dev/null)"
fi
kill "${NODE_PID[node-2]}" 2>/dev/null

# --- one single-use token, redeemed at all three replicas at once --------------------------
token=$(admin 1 token create --uses 1)
racers=()
for index in 1 2 3; do
    start "$WORK/race-$index.log" "$TUNNEL" client --gateway "127.0.0.1:${PORT[$index]}" --server-name localhost --token "$token" \
        --node-name "racer-$index" --cert "$WORK/race-$index/node.crt" --key "$WORK/race-$index/node.key" \
        --gateway-ca "$WORK/race-$index/gateway-ca.crt" --service "ssh=127.0.0.1:$SSH_PORT"
    racers+=("$LAST_PID")
done
for index in 1 2 3; do wait_for_line "$WORK/race-$index.log" "enrolled|refused|used|invalid" 30 >/dev/null; done
winners=$(ls "$WORK"/race-*/node.crt 2>/dev/null | wc -l)
[ "$winners" = 1 ] && pass "a single-use token redeemed at three replicas at once gives exactly one certificate" \
    || fail "single-use token race ($winners certificates)" "$(tail -n 3 "$WORK"/race-*.log)"
for pid in "${racers[@]}"; do kill "$pid" 2>/dev/null; done

# --- kill -9 of the holder: its node comes back through the others --------------------------
kill -9 "${GW_PID[$HOLDER]}"
killed_at=$SECONDS
if wait_for_lines "$WORK/node-1.log" "connected to the gateway" 2 30; then
    pass "after kill -9 of r$HOLDER, node-1 reconnected through another replica in $((SECONDS - killed_at)) s"
else
    fail "node-1 back within 30 s" "$(tail -n 5 "$WORK/node-1.log")"
fi
index=${OTHERS[0]}
out=$(poll 30 "TUNNEL_GATEWAY=127.0.0.1:${PORT[$index]} $(printf '%q ' "$TUNNEL") ssh root@node-1 -- $(printf '%q ' "${SSH_OPTS[@]}") 'echo retried'")
grep -q retried <<<"$out" && pass "an operator's retry through r$index reaches node-1 again" || fail "operator retry after the failover" "$out"

# --- the merged audit: it verifies, and every stream has one open and one close -------------
start_replica "$HOLDER" || fail "r$HOLDER restarted (its log recovered)" "$(tail -n 5 "$WORK/r$HOLDER.log")"
for pid in "${NODE_PID[node-1]}" "${GW_PID[1]}" "${GW_PID[2]}" "${GW_PID[3]}"; do kill "$pid" 2>/dev/null; done
for pid in "${NODE_PID[node-1]}" "${GW_PID[1]}" "${GW_PID[2]}" "${GW_PID[3]}"; do timeout 40 tail --pid="$pid" -f /dev/null; done
out=$("$TUNNEL" audit verify "$WORK/r1/audit" "$WORK/r2/audit" "$WORK/r3/audit" 2>&1) && pass "the three replicas' logs verify together" || fail "audit verify of the cluster" "$out"
out=$(python3 - "$WORK" <<'PY'
import collections, glob, json, sys
opens, closes = collections.Counter(), collections.Counter()
relayed = 0
for path in glob.glob(f"{sys.argv[1]}/r*/audit/*.jsonl"):
    for line in open(path):
        record = json.loads(line)
        kind, stream = record.get("type"), record.get("stream")
        if kind == "stream_open":
            opens[stream] += 1
            relayed += record.get("via_replica") is not None
        if kind == "stream_close": closes[stream] += 1
bad = [s for s in set(opens) | set(closes) if opens[s] != 1 or closes[s] != 1]
print(f"{len(opens)} streams, {relayed} of them through a peer link, {len(bad)} without exactly one open and one close: {bad[:5]}")
# The ssh and scp above, at least, went through the peer link of a replica that did not hold node-1.
sys.exit(1 if bad or relayed < 4 else 0)
PY
)
[ $? = 0 ] && pass "every stream has one open and one close in the merged logs ($out)" || fail "stream records" "$out"
