#!/usr/bin/env bash
# What opening many streams at once costs the gateway in audit syncs (issue #11's group-commit
# figure). One gateway with its audit log, one node offering an echo service, one admin; ROUNDS
# times, BURST `tunnel proxy node-1 echo` processes at once, each carrying one line there and
# back. Reported: the burst's wall time (median over the rounds) and the gateway's
# fdatasync/fsync calls per stream opened (counted by strace with seccomp-bpf, which stops the
# gateway only at those calls, the same for both builds).
#
#   scripts/bench-stream-open.sh [--burst N] [--rounds R] [--tunnel PATH]
#     --burst N      streams opened together (default 50)
#     --rounds R     bursts per pass (default 5)
#     --tunnel PATH  the binary (default .build/release/tunnel); an older build gives the "before"
# Needs python3 and strace. KEEP_WORK=1 keeps the work directory.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/e2e.sh
. "$ROOT/scripts/lib/e2e.sh"
BURST=50 ROUNDS=5 TUNNEL_ARG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --burst) BURST=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --tunnel) TUNNEL_ARG=$2; shift ;;
        -h|--help) usage_from_header; exit 0 ;;
        *) echo "bench-stream-open: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
e2e_begin stream-open "${TUNNEL_ARG:-$ROOT/.build/release/tunnel}" python3 strace

start_echo_server
GATEWAY_PORT=$(free_port)
# strace counts the gateway's syncs; with seccomp-bpf only those calls stop the gateway. The
# bursts open more streams a minute than one operator's default record budget allows (a flag, not
# TUNNEL_STREAM_RECORDS_PER_OPERATOR_PER_MINUTE: the node's client refuses TUNNEL_ names it does not know).
start "$WORK/gateway.log" strace -f -ttt --seccomp-bpf -e trace=fdatasync,fsync -o "$WORK/syncs.txt" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data" \
    --stream-records-per-operator-per-minute 100000
wait_for_line "$WORK/gateway.log" "admin socket open" 20 "$LAST_PID" || die "tunnel gateway did not start" "$WORK/gateway.log"
# The cleanup ends the gateway itself; strace follows it out.
GATEWAY_PID=$(pgrep -P "$LAST_PID" -f "gateway --listen")
PIDS=("$GATEWAY_PID" "${PIDS[@]}")
ADMIN=(--admin-socket "$WORK/data/admin.sock")
bench_operator
bench_node node-1 "$WORK/client.log" "echo=127.0.0.1:$ECHO_PORT"

# One burst: BURST proxies at once; prints its wall time in ms, or -1 if any line did not come back.
burst() {
    local t0 i failed=0 pids=()
    t0=$(date +%s%N)
    for i in $(seq 1 "$BURST"); do
        ( [ "$(echo "line-$i" | timeout 30 "$TUNNEL" proxy node-1 echo 2>/dev/null | head -n 1)" = "line-$i" ] ) &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || failed=1; done
    if [ "$failed" = 0 ]; then echo $(( ($(date +%s%N) - t0) / 1000000 )); else echo -1; fi
}

FROM=$(date +%s.%N)
for _ in $(seq 1 "$ROUNDS"); do burst; done >"$WORK/walls.txt"
UNTIL=$(date +%s.%N)
grep -q -- '^-1$' "$WORK/walls.txt" && fail "a line did not come back" || pass "every line of $(( BURST * ROUNDS )) streams came back"
# strace writes its file when it ends: stop the gateway first, then count the bursts' syncs by time.
kill -TERM "$GATEWAY_PID"
timeout 40 tail --pid="$GATEWAY_PID" -f /dev/null
sleep 1
SYNCS=$(awk -v from="$FROM" -v until="$UNTIL" '/sync\(/ && $2 >= from && $2 <= until { n++ } END { print n + 0 }' "$WORK/syncs.txt")

python3 - "$WORK/walls.txt" "$SYNCS" "$(( BURST * ROUNDS ))" "$BURST" <<'PY'
import statistics, sys
walls = [int(l) for l in open(sys.argv[1]) if l.strip() != "-1"]
syncs, streams, burst = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"bursts of {burst} streams: median {statistics.median(walls)} ms, max {max(walls)} ms; "
      f"gateway syncs {syncs} for {streams} stream opens ({syncs / streams:.2f} per stream)")
PY
