#!/usr/bin/env bash
# How soon a real `tunnel client` is back after `kill -9` of its gateway and a restart (issue
# #11's reconnect-backoff figure). One gateway and one node on loopback; ROUNDS times: let the
# gateway run UPTIME seconds, kill -9 it, start it again on the same port and data directory,
# and time from the kill until the client says "connected to the gateway" again. Reported: the
# median, 90th percentile and maximum, and how many rounds were back within 1 s.
#
#   scripts/bench-crash-reconnect.sh [--rounds N] [--uptime S] [--tunnel PATH] [--client PATH]
#     --rounds N     kill -9s (default 30)
#     --uptime S     seconds the gateway runs before each kill (default 3, shorter than the 30 s
#                    session after which the old client's backoff started over)
#     --tunnel PATH  the binary for the gateway and the admin commands (default .build/release/tunnel)
#     --client PATH  the binary for the node (default the same): an older build gives the "before"
# Needs python3. KEEP_WORK=1 keeps the work directory.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/e2e.sh
. "$ROOT/scripts/lib/e2e.sh"
ROUNDS=30 UPTIME=3 TUNNEL_ARG="" CLIENT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --uptime) UPTIME=$2; shift ;;
        --tunnel) TUNNEL_ARG=$2; shift ;;
        --client) CLIENT=$2; shift ;;
        -h|--help) usage_from_header; exit 0 ;;
        *) echo "bench-crash-reconnect: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
e2e_begin crash-reconnect "${TUNNEL_ARG:-$ROOT/.build/release/tunnel}" python3
CLIENT=$(readlink -f "${CLIENT:-$TUNNEL}")

GATEWAY_PORT=$(free_port)
start_gateway() {
    start "$WORK/gateway-$1.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data"
    GATEWAY_PID=$LAST_PID
    wait_for_line "$WORK/gateway-$1.log" "admin socket open" 20 "$GATEWAY_PID" || die "tunnel gateway did not start" "$WORK/gateway-$1.log"
}
start_gateway 0
ADMIN=(--admin-socket "$WORK/data/admin.sock")
NODE_CLIENT=$CLIENT bench_node node-1 "$WORK/client.log" "echo=127.0.0.1:9"

note "$ROUNDS rounds: ${UPTIME}s up, kill -9, restart; client $CLIENT"
: >"$WORK/back.txt"
for round in $(seq 1 "$ROUNDS"); do
    sleep "$UPTIME"
    kill -9 "$GATEWAY_PID"
    killed=$(date +%s%N)
    wait "$GATEWAY_PID" 2>/dev/null
    start_gateway "$round"
    if wait_for_lines "$WORK/client.log" "connected to the gateway" $(( round + 1 )) 60; then
        echo $(( ($(date +%s%N) - killed) / 1000000 )) >>"$WORK/back.txt"
    else
        fail "round $round: the client was not back within 60 s"
        echo 60000 >>"$WORK/back.txt"
    fi
done
[ "$FAILED" = 0 ] && pass "the client came back after each of $ROUNDS kill -9s"

python3 - "$WORK/back.txt" <<'PY'
import statistics, sys
back = sorted(int(line) for line in open(sys.argv[1]))
p90 = back[min(len(back) - 1, int(0.9 * len(back)))]
within = sum(1 for ms in back if ms <= 1000)
print(f"rounds {len(back)}  back after kill -9: median {statistics.median(back)/1000:.2f} s, "
      f"p90 {p90/1000:.2f} s, max {back[-1]/1000:.2f} s; within 1 s: {within} of {len(back)}")
PY
