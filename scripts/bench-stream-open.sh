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
BURST=50 ROUNDS=5 TUNNEL_ARG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --burst) BURST=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --tunnel) TUNNEL_ARG=$2; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-stream-open: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=lib/e2e.sh
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin stream-open "${TUNNEL_ARG:-$ROOT/.build/release/tunnel}" python3 strace
die() { fail "$1" "$( [ -f "${2:-}" ] && tail -n 20 "$2")"; exit 1; }

start "$WORK/echo.log" python3 -c '
import socketserver
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile: self.wfile.write(line); self.wfile.flush()
socketserver.ThreadingTCPServer.daemon_threads = True
server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
print("READY port=%d" % server.server_address[1], flush=True)
server.serve_forever()'
wait_for_line "$WORK/echo.log" "READY port=" 10 || die "echo server did not start" "$WORK/echo.log"
ECHO_PORT=$(grep -o 'READY port=[0-9]*' "$WORK/echo.log" | cut -d= -f2)
GATEWAY_PORT=$(free_port)
# The bursts open more streams a minute than one operator's default record budget allows.
export TUNNEL_STREAM_RECORDS_PER_OPERATOR_PER_MINUTE=100000
# strace counts the gateway's syncs; with seccomp-bpf only those calls stop the gateway.
start "$WORK/gateway.log" strace -f -ttt --seccomp-bpf -e trace=fdatasync,fsync -o "$WORK/syncs.txt" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data"
wait_for_line "$WORK/gateway.log" "admin socket open" 20 "$LAST_PID" || die "tunnel gateway did not start" "$WORK/gateway.log"
# The cleanup ends the gateway itself; strace follows it out.
GATEWAY_PID=$(pgrep -P "$LAST_PID" -f "gateway --listen")
PIDS=("$GATEWAY_PID" "${PIDS[@]}")
ADMIN=(--admin-socket "$WORK/data/admin.sock")
{ "$TUNNEL" user add bench --role admin --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --out "$WORK/bench.yaml" "${ADMIN[@]}" \
  && "$TUNNEL" login "$WORK/bench.yaml"; } >"$WORK/pki.log" 2>&1 || die "operator setup failed" "$WORK/pki.log"
TOKEN=$("$TUNNEL" token create --node node-1 "${ADMIN[@]}" 2>>"$WORK/pki.log") || die "token create failed" "$WORK/pki.log"
start "$WORK/client.log" "$TUNNEL" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost --token "$TOKEN" \
    --cert "$WORK/node/node.crt" --key "$WORK/node/node.key" --gateway-ca "$WORK/node/gateway-ca.crt" --service "echo=127.0.0.1:$ECHO_PORT"
wait_for_line "$WORK/client.log" "connected to the gateway" 20 "$LAST_PID" || die "tunnel client did not connect" "$WORK/client.log"

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
