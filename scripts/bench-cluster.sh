#!/usr/bin/env bash
# A gateway cluster's costs, measured side by side in one run on loopback (scripts/lib/cluster.sh:
# a throwaway PostgreSQL and three replicas): an echo service on node-1, and two long-running
# `tunnel forward node-1 echo` listeners, one through the replica holding node-1 (direct) and one
# through another replica (peer: the stream crosses the peer link). Interleaved, per path:
#   new stream   connect to the forward, send 64 bytes, read them back (a new mux stream each)
#   round trip   64 bytes echoed on one open stream
# Then failover: kill -9 of the replica holding node-1, the time until the node's session is up
# on another replica, and until an operator's first stream through a surviving replica succeeds
# (polled every 50 ms); the killed replica is restarted and the next round kills the new holder.
#   scripts/bench-cluster.sh [--tunnel PATH] [--streams N] [--rtts N] [--kills N]
#     defaults: .build/release/tunnel if present, else .build/debug/tunnel; 40 streams (the
#     gateway records at most a burst of 100 stream opens per operator) and 2000 round trips per
#     path; 3 kills. Medians and 90th percentiles are printed as a Markdown table.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STREAMS=40 RTTS=2000 KILLS=3 BINARY=""
while [ $# -gt 0 ]; do
    case $1 in
        --tunnel) BINARY=$2; shift 2 ;;
        --streams) STREAMS=$2; shift 2 ;;
        --rtts) RTTS=$2; shift 2 ;;
        --kills) KILLS=$2; shift 2 ;;
        *) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
[ -z "$BINARY" ] && { [ -x "$ROOT/.build/release/tunnel" ] && BINARY=$ROOT/.build/release/tunnel || BINARY=$ROOT/.build/debug/tunnel; }
. "$ROOT/scripts/lib/e2e.sh"
. "$ROOT/scripts/lib/postgres.sh"
. "$ROOT/scripts/lib/cluster.sh"
e2e_begin bench-cluster "$BINARY" python3
e2e_on_exit() { postgres_stop; }

cluster_start 3 || { fail "cluster started"; exit 1; }
ECHO_PORT=$(free_port)
start "$WORK/echo.log" python3 -c '
import socket, sys, threading
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
def serve(conn):
    with conn:
        while data := conn.recv(65536): conn.sendall(data)
while True:
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
' "$ECHO_PORT"
token=$(admin 1 token create --node node-1)
start "$WORK/node-1.log" "$TUNNEL" client --gateway "$LIST" --server-name localhost --token "$token" \
    --cert "$WORK/node-1/node.crt" --key "$WORK/node-1/node.key" --gateway-ca "$WORK/node-1/gateway-ca.crt" --service "echo=127.0.0.1:$ECHO_PORT"
NODE_PID=$LAST_PID
wait_for_line "$WORK/node-1.log" "connected to the gateway" 30 || { fail "node-1 connected" "$(cat "$WORK/node-1.log")"; exit 1; }
HOLDER=""
for _ in $(seq 1 100); do HOLDER=$(holder_of node-1); [ -n "$HOLDER" ] && break; sleep 0.1; done
PEER=$(( HOLDER % 3 + 1 ))
admin 1 user add alice --role admin --gateway "127.0.0.1:${PORT[1]}" --server-name localhost --out "$WORK/alice.yaml" >/dev/null
"$TUNNEL" login "$WORK/alice.yaml" >/dev/null
DIRECT_PORT=$(free_port) PEER_PORT=$(free_port)
start "$WORK/forward-direct.log" "$TUNNEL" forward --gateway "127.0.0.1:${PORT[$HOLDER]}" node-1 echo --listen "127.0.0.1:$DIRECT_PORT"
start "$WORK/forward-peer.log" "$TUNNEL" forward --gateway "127.0.0.1:${PORT[$PEER]}" node-1 echo --listen "127.0.0.1:$PEER_PORT"
wait_for_line "$WORK/forward-direct.log" "^forwarding " 20
wait_for_line "$WORK/forward-peer.log" "^forwarding " 20

echo "binary: $TUNNEL; node-1 on r$HOLDER; direct through r$HOLDER, peer through r$PEER"
echo
python3 - "$DIRECT_PORT" "$PEER_PORT" "$STREAMS" "$RTTS" <<'PY'
import socket, statistics, sys, time
direct, peer, streams, rtts = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
payload = bytes(range(64))
def exchange(sock):
    sock.sendall(payload)
    got = b""
    while len(got) < 64:
        chunk = sock.recv(64 - len(got))
        if not chunk: raise RuntimeError("stream closed")
        got += chunk
def new_stream(port):
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        exchange(sock)
        return time.perf_counter() - start
samples = {"direct": {"new": [], "rtt": []}, "peer": {"new": [], "rtt": []}}
ports = {"direct": direct, "peer": peer}
for name in ports: new_stream(ports[name])   # warm-up: the first peer stream dials the link
for index in range(streams):
    for name in (("direct", "peer") if index % 2 == 0 else ("peer", "direct")):
        samples[name]["new"].append(new_stream(ports[name]))
socks = {}
for name, port in ports.items():
    socks[name] = socket.create_connection(("127.0.0.1", port), timeout=10)
    socks[name].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(100): exchange(socks[name])
for index in range(rtts):
    for name in (("direct", "peer") if index % 2 == 0 else ("peer", "direct")):
        start = time.perf_counter(); exchange(socks[name]); samples[name]["rtt"].append(time.perf_counter() - start)
def ms(values, q): return statistics.quantiles(values, n=10)[8] * 1000 if q == 90 else statistics.median(values) * 1000
print("| path | new stream, median | new stream, p90 | 64 B round trip, median | 64 B round trip, p90 |")
print("|---|---|---|---|---|")
for name in ("direct", "peer"):
    s = samples[name]
    print(f"| {name} | {ms(s['new'],50):.2f} ms | {ms(s['new'],90):.2f} ms | {ms(s['rtt'],50):.3f} ms | {ms(s['rtt'],90):.3f} ms |")
d, p = samples["direct"], samples["peer"]
print(f"| peer − direct | +{ms(p['new'],50)-ms(d['new'],50):.2f} ms | | +{ms(p['rtt'],50)-ms(d['rtt'],50):.3f} ms | |")
PY

# --- failover after kill -9 of the holder ----------------------------------------------------
echo
echo "| kill | killed | node back on another replica | first operator stream through a survivor |"
echo "|---|---|---|---|"
# failover_times KILLED-AT LOG CONNECTED PORT: polls (at most 60 s) for a new "connected" line in
# the node's LOG every 20 ms and for a 64-byte echo through the forward on PORT every 100 ms; prints
# both times after KILLED-AT (Unix seconds), or "-" for what did not happen.
failover_times() { python3 - "$@" <<'PY'
import socket, sys, time
killed, log, connected, port = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def probe():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.settimeout(0.5); s.sendall(b"x" * 64); got = b""
            while len(got) < 64:
                chunk = s.recv(64)
                if not chunk: return False
                got += chunk
            return True
    except OSError:
        return False
back = streamed = None
turn = 0
while time.time() - killed < 60 and (back is None or streamed is None):
    if back is None and open(log).read().count("connected to the gateway") > connected: back = time.time()
    # A probe every 100 ms: a refused stream is recorded, and the gateway allows an operator
    # 10 records a second; faster probing would be refused for that instead.
    if streamed is None and turn % 5 == 0 and probe(): streamed = time.time()
    turn += 1
    time.sleep(0.02)
print(" ".join("-" if t is None else f"{t - killed:.2f}" for t in (back, streamed)))
PY
}
for round in $(seq 1 "$KILLS"); do
    connected=$(grep -c "connected to the gateway" "$WORK/node-1.log")
    survivor=$(( HOLDER % 3 + 1 ))
    SURVIVOR_PORT=$(free_port)
    start "$WORK/forward-survivor-$round.log" "$TUNNEL" forward --gateway "127.0.0.1:${PORT[$survivor]}" node-1 echo --listen "127.0.0.1:$SURVIVOR_PORT"
    wait_for_line "$WORK/forward-survivor-$round.log" "^forwarding " 20
    killed=$(date +%s.%N)
    kill -9 "${GW_PID[$HOLDER]}"
    # Probes start once it is gone: a stream through the dying process would count as a failover.
    wait "${GW_PID[$HOLDER]}" 2>/dev/null
    read -r back streamed < <(failover_times "$killed" "$WORK/node-1.log" "$connected" "$SURVIVOR_PORT")
    printf '| %s | r%s | %s s | %s s |\n' "$round" "$HOLDER" "$back" "$streamed"
    start_replica "$HOLDER" >/dev/null
    for _ in $(seq 1 100); do
        # The replica of node-1's newest session, by the time its log line carries.
        new=$(grep -HE "node.name=node-1 .*node connected" "$WORK"/r[123].log | sed -E 's|^.*/r([0-9])\.log:([^ ]+) .*|\2 \1|' | sort | tail -1 | cut -d' ' -f2)
        [ -n "$new" ] && [ "$new" != "$HOLDER" ] && break
        sleep 0.1
    done
    HOLDER=$new
done
