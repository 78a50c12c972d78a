#!/usr/bin/env bash
# CPU per reconnect with and without TLS session resumption, on one release build: NODES
# simulated nodes come online, the gateway is killed with SIGKILL and started again on the same
# data directory (so with the same ticket keys), and once every node is back (its /metrics say
# so) the gateway's CPU since that start and the simulator's since the kill are divided by the
# nodes. Alternates runs with session tickets and with `fleet-sim --full-handshakes` (the gateway
# issues tickets here: --session-resumption, off by default in the product).
#   FLEET_BIN=DIR scripts/bench-reconnect-cpu.sh [--nodes 1000] [--rounds 2]
# Uses the identities and gateway data a `fleet-*.sh --nodes 10000` run keeps in
# $FLEET_DIR/n10000 (default /var/tmp/tunnel-fleet), on a copy of the data. Run it under the
# bench lock: flock /work/notes/bench.lock scripts/bench-reconnect-cpu.sh
set -uo pipefail

NODES=1000 ROUNDS=2
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) NODES=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
done
: "${FLEET_BIN:?FLEET_BIN must name a directory holding release builds of tunnel and fleet-sim}"
FLEET=${FLEET_DIR:-/var/tmp/tunnel-fleet}/n10000
[ -d "$FLEET/ids" ] && [ -d "$FLEET/data/pki" ] || { echo "no fleet in $FLEET: run scripts/fleet-idle.sh --nodes 10000 once"; exit 1; }
WORK=$(mktemp -d /tmp/bench-reconnect-cpu.XXXXXX)
GATEWAY= SIM=
trap 'kill $GATEWAY $SIM 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/data"
cp -a "$FLEET/data/pki" "$FLEET/data/fleet.db" "$FLEET/data/audit-key" "$WORK/data/"
printf 'roles:\n  admin:\n    admin: true\n' >"$WORK/policy.yaml"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port) METRICS=$(free_port) TICK_MS=$((1000 / $(getconf CLK_TCK)))
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
gateway() {
    "$FLEET_BIN/tunnel" gateway --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --policy "$WORK/policy.yaml" \
        --metrics-listen "127.0.0.1:$METRICS" --session-resumption true >>"$WORK/gateway.log" 2>&1 &
    GATEWAY=$!
}
metric() { curl -s "127.0.0.1:$METRICS/metrics" | awk -v name="$1" 'index($0, name " ") == 1 { print $2 }'; }
admitted='tunnel_handshakes_total{kind="node",outcome="ok"}'

# round LABEL [FLEET-SIM FLAGS]: one kill and reconnect; prints its figures.
round() {
    local label=$1; shift
    gateway
    "$FLEET_BIN/fleet-sim" --gateway "127.0.0.1:$PORT" --server-name localhost --nodes "$NODES" \
        --identities "$FLEET/ids" --connect-rate 200 --status-interval 1s "$@" >"$WORK/sim.log" 2>&1 &
    SIM=$!
    for _ in $(seq 300); do grep -q '^ONLINE' "$WORK/sim.log" && break; sleep 0.5; done
    sleep 2
    kill -9 "$GATEWAY"; wait "$GATEWAY" 2>/dev/null
    local sim_before back=0
    sim_before=$(ticks "$SIM")
    gateway
    for _ in $(seq 120); do
        back=$(metric "$admitted"); [ "${back:-0}" -ge "$NODES" ] 2>/dev/null && break
        sleep 0.5
    done
    sleep 1
    awk -v label="$label" -v g="$(($(ticks "$GATEWAY") * TICK_MS))" -v s="$((($(ticks "$SIM") - sim_before) * TICK_MS))" \
        -v n="$NODES" -v back="${back:-0}" -v resumed="$(metric tunnel_handshakes_resumed_total)" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
        'BEGIN { printf "%-16s %d of %d back, %d resumed: gateway %.3f ms per connect, simulator %.3f ms per reconnect (load %s)\n",
                 label, back, n, resumed, g / n, s / n, load }'
    kill "$SIM" "$GATEWAY"; wait 2>/dev/null
    SIM= GATEWAY=
}

uptime
for _ in $(seq "$ROUNDS"); do
    round "session tickets"
    round "full handshakes" --full-handshakes
done
