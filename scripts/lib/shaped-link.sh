# Shared by Tests/EndToEnd/shaped-link.sh and scripts/bench-tunnel.sh: a 20 Mbit/s edge uplink
# made here, two network namespaces joined by a veth pair whose both ends are shaped with
# `tc ... tbf` (netem is not available here). The gateway and the operator live in the "gateway"
# namespace, the node's `tunnel client`, an echo service and a bulk-download service in the
# "node" namespace, so the tunnel's streams and two plain TCP connections (the control) cross the
# same shaped link. Source it after scripts/lib/loopback.sh; the caller owns PIDS and WORK and
# calls shaped_link_down in its cleanup. Needs root (ip netns, tc).

SHAPED_NS_GW=tnl-sgw-$$
SHAPED_NS_NODE=tnl-snode-$$
SHAPED_GW_IP=10.214.0.1
SHAPED_NODE_IP=10.214.0.2
SHAPED_ECHO_PORT=7001
SHAPED_BULK_PORT=7002
SHAPED_SINK_PORT=7003
KEYSTROKES=$(dirname "${BASH_SOURCE[0]}")/keystrokes.py

# shaped_link_up RATE: the namespaces and the link, both directions shaped to RATE (e.g. 20mbit).
# The token bucket holds at most 50 ms of queue, as a modem's buffer would.
shaped_link_up() {
    local rate=$1 ns dev
    ip netns add "$SHAPED_NS_GW" && ip netns add "$SHAPED_NS_NODE" || return 1
    ip link add "sgw$$" netns "$SHAPED_NS_GW" type veth peer name "snode$$" netns "$SHAPED_NS_NODE" || return 1
    ip -n "$SHAPED_NS_GW" addr add "$SHAPED_GW_IP/24" dev "sgw$$"
    ip -n "$SHAPED_NS_NODE" addr add "$SHAPED_NODE_IP/24" dev "snode$$"
    for ns in "$SHAPED_NS_GW:sgw$$" "$SHAPED_NS_NODE:snode$$"; do
        dev=${ns#*:}; ns=${ns%%:*}
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "$dev" up
        tc -n "$ns" qdisc add dev "$dev" root tbf rate "$rate" burst 32kbit latency 50ms || return 1
    done
}

shaped_link_down() {
    ip netns del "$SHAPED_NS_GW" 2>/dev/null
    ip netns del "$SHAPED_NS_NODE" 2>/dev/null
    return 0
}

in_gateway_ns() { ip netns exec "$SHAPED_NS_GW" "$@"; }
in_node_ns() { ip netns exec "$SHAPED_NS_NODE" "$@"; }

# shaped_link_start TUNNEL BULK_BYTES: the node's services, the gateway, the node's client and an
# operator login ($HOME/.config/tunnel, so set HOME first). Returns non-zero, with the log's tail
# on stderr, when a part does not come up.
shaped_link_start() {
    local tunnel=$1 bulk_bytes=$2 token
    start "$WORK/shaped-echo.log" ip netns exec "$SHAPED_NS_NODE" python3 "$KEYSTROKES" echo-server "$SHAPED_ECHO_PORT"
    start "$WORK/shaped-bulk.log" ip netns exec "$SHAPED_NS_NODE" python3 "$KEYSTROKES" bulk-server "$SHAPED_BULK_PORT" "$bulk_bytes"
    start "$WORK/shaped-sink.log" ip netns exec "$SHAPED_NS_NODE" python3 "$KEYSTROKES" sink-server "$SHAPED_SINK_PORT"
    "$tunnel" ca init --dir "$WORK/shaped-data/pki" --gateway-ip "$SHAPED_GW_IP" >/dev/null || return 1
    start "$WORK/shaped-gateway.log" ip netns exec "$SHAPED_NS_GW" "$tunnel" gateway --listen "$SHAPED_GW_IP:7443" \
        --data-dir "$WORK/shaped-data"
    wait_for_line "$WORK/shaped-gateway.log" "admin socket open" 30 || { tail -5 "$WORK/shaped-gateway.log" >&2; return 1; }
    local admin=(--admin-socket "$WORK/shaped-data/admin.sock")
    { "$tunnel" user add shaped --role admin --gateway "$SHAPED_GW_IP:7443" --out "$WORK/shaped-operator.yaml" "${admin[@]}" \
        && "$tunnel" login "$WORK/shaped-operator.yaml"; } >"$WORK/shaped-pki.log" 2>&1 || { cat "$WORK/shaped-pki.log" >&2; return 1; }
    token=$("$tunnel" token create --node edge-1 "${admin[@]}" 2>>"$WORK/shaped-pki.log") || { cat "$WORK/shaped-pki.log" >&2; return 1; }
    start "$WORK/shaped-client.log" ip netns exec "$SHAPED_NS_NODE" "$tunnel" client --gateway "$SHAPED_GW_IP:7443" \
        --token "$token" --cert "$WORK/shaped-node/node.crt" --key "$WORK/shaped-node/node.key" \
        --gateway-ca "$WORK/shaped-node/gateway-ca.crt" \
        --service "echo=127.0.0.1:$SHAPED_ECHO_PORT" --service "bulk=127.0.0.1:$SHAPED_BULK_PORT" \
        --service "sink=127.0.0.1:$SHAPED_SINK_PORT"
    wait_for_line "$WORK/shaped-client.log" "connected to the gateway" 30 || { tail -5 "$WORK/shaped-client.log" >&2; return 1; }
    wait_for_line "$WORK/shaped-echo.log" READY 10 && wait_for_line "$WORK/shaped-bulk.log" READY 10 \
        && wait_for_line "$WORK/shaped-sink.log" READY 10
}

# shaped_measure PATH LOAD COUNT BULK_BYTES: one run of keystrokes.py measure from the gateway's
# namespace; PATH tunnel|tcp, LOAD idle|bulk (a download from the node)|upload (to the node's
# sink, so the gateway's socket toward the node is the loaded one). Prints its JSON line.
shaped_measure() {
    local path=$1 load=$2 count=$3 bytes=$4 tunnel=${SHAPED_TUNNEL:-tunnel}
    local echo_args bulk_args=()
    if [ "$path" = tunnel ]; then
        echo_args=(--echo-cmd "$tunnel proxy --class interactive edge-1 echo")
        [ "$load" = bulk ] && bulk_args=(--bulk-cmd "$tunnel proxy --class bulk edge-1 bulk")
        [ "$load" = upload ] && bulk_args=(--upload-cmd "$tunnel proxy --class bulk edge-1 sink")
    else
        echo_args=(--echo-tcp "$SHAPED_NODE_IP:$SHAPED_ECHO_PORT")
        [ "$load" = bulk ] && bulk_args=(--bulk-tcp "$SHAPED_NODE_IP:$SHAPED_BULK_PORT")
        [ "$load" = upload ] && bulk_args=(--upload-tcp "$SHAPED_NODE_IP:$SHAPED_SINK_PORT")
    fi
    in_gateway_ns python3 "$KEYSTROKES" measure --count "$count" --bytes "$bytes" --timeout 60 "${echo_args[@]}" "${bulk_args[@]}"
}
