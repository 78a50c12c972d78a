#!/usr/bin/env bash
# The edge agent's footprint (issue #12), side by side with OpenSSH's `ssh -R` client in one run:
# resident memory idle (RSS and PSS) and with 8 busy streams, wakeups while idle, what each MiB of the agent
# is, and the binaries' sizes. One gateway serves every agent; each agent is its own node offering
# one iperf3 server, reached through its own `tunnel forward`. Writes nothing into the repository.
#
#   scripts/bench-edge.sh [--quick] [--idle SECONDS] [--agent NAME=COMMAND]... [--tunnel PATH]
#                         [--out DIR] [--keep]
#     --quick          10 s idle window and 3 s of load instead of 60 s and 10 s
#     --idle SECONDS   how long the idle window lasts (wakeups are counted over it)
#     --agent NAME=CMD an agent to measure: CMD is the command line up to and without the client's
#                      flags, e.g. "static=/tmp/s/tunnel-client"; repeatable. Default: "tunnel client"
#                      of .build/release/tunnel, and .build/release/tunnel-client when it exists
#     --tunnel PATH    the binary that runs the gateway and the operator (default .build/release/tunnel)
#     --out DIR        keep the raw figures and the smaps of every agent in DIR
#     --keep           keep the temporary directory
# Needs: iperf3, python3, /usr/sbin/sshd, ssh, ssh-keygen (apt-get install iperf3 openssh-server).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/e2e.sh
. "$ROOT/scripts/lib/e2e.sh"
IDLE=60 LOAD=10 OUT="" TUNNEL="" AGENTS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) IDLE=10; LOAD=3 ;;
        --idle) IDLE=$2; shift ;;
        --agent) AGENTS+=("$2"); shift ;;
        --tunnel) TUNNEL=$2; shift ;;
        --out) OUT=$2; shift ;;
        --keep) KEEP_WORK=1 ;;
        -h|--help) usage_from_header; exit 0 ;;
        *) echo "bench-edge: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
e2e_begin bench-edge "${TUNNEL:-$ROOT/.build/release/tunnel}" iperf3 python3 /usr/sbin/sshd ssh ssh-keygen timeout strip
if [ ${#AGENTS[@]} -eq 0 ]; then
    AGENTS=("tunnel=$TUNNEL client")
    [ -x "$(dirname "$TUNNEL")/tunnel-client" ] && AGENTS+=("tunnel-client=$(dirname "$TUNNEL")/tunnel-client")
fi
RAW=${OUT:-$WORK/raw}
mkdir -p "$RAW"
RAW=$(readlink -f "$RAW")
STATS="python3 $ROOT/scripts/lib/proc_footprint.py"

# --- the service every path reaches: one iperf3 server ----------------------------------------------
IPERF_PORT=$(free_port)
start "$WORK/iperf3-server.log" iperf3 -s -p "$IPERF_PORT" --forceflush
expect_ready "iperf3 server" "$LAST_PID" "$WORK/iperf3-server.log" "Server listening on $IPERF_PORT" 10

# --- ssh -R, the peer ----------------------------------------------------------------------------------
SSHD_PORT=$(free_port)
prepare_sshd "$SSHD_PORT" "AllowTcpForwarding yes"
start "$WORK/sshd.log" /usr/sbin/sshd -D -e -f "$WORK/sshd_config"
expect_ready "sshd" "$LAST_PID" "$WORK/sshd.log" "Server listening" 10
start "$WORK/ssh-R.log" ssh -N -F /dev/null -i "$WORK/id" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$WORK/known_hosts" -p "$SSHD_PORT" \
    -o ExitOnForwardFailure=yes -o ServerAliveInterval=0 -R "0:127.0.0.1:$IPERF_PORT" root@127.0.0.1
SSHR_PID=$LAST_PID
expect_ready "ssh -R" "$SSHR_PID" "$WORK/ssh-R.log" "Allocated port [0-9]+ for remote forward" 20
SSHR_PORT=$(grep -oE "Allocated port [0-9]+ for remote forward" "$WORK/ssh-R.log" | head -1 | awk '{print $3}')

# --- the gateway, the operator, and one node per agent ------------------------------------------------
bench_gateway
bench_operator

NAMES=(ssh-R)
declare -A PID_OF=([ssh-R]=$SSHR_PID) PORT_OF=([ssh-R]=$SSHR_PORT)
index=0
for agent in "${AGENTS[@]}"; do
    name=${agent%%=*} command=${agent#*=} index=$((index + 1))
    node="edge-$index"
    token=$("$TUNNEL" token create --node "$node" "${ADMIN[@]}" 2>>"$WORK/pki.log") || die "tunnel token create failed" "$WORK/pki.log"
    # shellcheck disable=SC2086 # the agent's command line is split on purpose
    start "$WORK/$name.log" $command --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$token" \
        --cert "$WORK/$node/node.crt" --key "$WORK/$node/node.key" --gateway-ca "$WORK/$node/gateway-ca.crt" \
        --service "iperf=127.0.0.1:$IPERF_PORT"
    PID_OF[$name]=$LAST_PID
    expect_ready "$name" "$LAST_PID" "$WORK/$name.log" "connected to the gateway" 20
    start "$WORK/forward-$name.log" "$TUNNEL" forward "$node" iperf --listen "127.0.0.1:$(free_port)"
    expect_ready "tunnel forward to $node" "$LAST_PID" "$WORK/forward-$name.log" "^forwarding " 20
    PORT_OF[$name]=$(grep -oE '^forwarding [0-9.]+:[0-9]+' "$WORK/forward-$name.log" | head -1 | awk -F: '{print $2}')
    NAMES+=("$name")
done

# --- idle: memory and wakeups over the same window --------------------------------------------------
note "idle for ${IDLE}s"
for name in "${NAMES[@]}"; do $STATS begin "${PID_OF[$name]}" >"$WORK/$name.begin"; done
sleep "$IDLE"   # the measurement window itself, not a synchronisation
for name in "${NAMES[@]}"; do
    pid=${PID_OF[$name]}
    $STATS end "$pid" "$WORK/$name.begin" "$IDLE" >"$RAW/$name.idle.json"
    cp "/proc/$pid/smaps" "$RAW/$name.smaps" 2>/dev/null
done

# --- 8 busy streams, one path at a time, largest resident set sampled ----------------------------------
for name in "${NAMES[@]}"; do
    note "8 streams through $name for ${LOAD}s"
    timeout $((LOAD + 30)) iperf3 -c 127.0.0.1 -p "${PORT_OF[$name]}" -P 8 -t "$LOAD" -J >"$RAW/$name.iperf.json" 2>&1 &
    client=$!
    $STATS sample "${PID_OF[$name]}" "$client" >"$RAW/$name.load.json"
    wait "$client" || note "iperf3 through $name failed (see $RAW/$name.iperf.json)"
done

# --- binaries ------------------------------------------------------------------------------------------
for agent in "${AGENTS[@]}"; do
    name=${agent%%=*} command=${agent#*=}
    binary=$(readlink -f "${command%% *}")
    cp "$binary" "$WORK/stripped" && strip "$WORK/stripped"
    printf '{"binary": "%s", "size": %d, "stripped": %d}\n' "$binary" "$(stat -c %s "$binary")" "$(stat -c %s "$WORK/stripped")" >"$RAW/$name.size.json"
done

$STATS report "$RAW" "$IPERF_PORT" "${NAMES[@]}"
