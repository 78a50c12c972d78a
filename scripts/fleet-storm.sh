#!/usr/bin/env bash
# Fleet scale, scenarios 2 and 6 (issue #11): reconnect storms. NODES simulated nodes on a release
# gateway; the gateway is killed with SIGKILL and started again, KILLS times. After each restart
# the simulator (told by SIGUSR1 at the moment of the kill) reports when every node was back:
# p50, p99 and the last. During each storm, one second after the restart, an admin's `tunnel
# nodes` and a new echo stream through `tunnel proxy` to a node that is back are timed. Times are
# counted from the kill; the gateway's own restart time (to "admin socket open") is printed beside.
#   scripts/fleet-storm.sh [--nodes 10000] [--kills 1] [--uptime 3] [--connect-rate 0]
#   scripts/fleet-storm.sh --nodes 1000 --kills 20 --uptime 3     # scenario 6, the crash loop
# --uptime: seconds the gateway runs after all nodes are back (or after the 60 s wait) before
# the next kill. --connect-rate ramps only the fleet's first connects (fleet-idle.sh says why).
# Each storm also reports the CPU per reconnect of the gateway (its whole life from the restart
# until every node is back) and of the simulator (from the kill until then). STORM_PERF=FILE
# records the first storm's gateway with `perf record -e cpu-clock -g` for STORM_PERF_SECONDS (15).
# The gateway issues session tickets here (--session-resumption, off by default in the product);
# --full-handshakes measures it as shipped. Before the first kill, `tunnel nodes` is timed at
# rest (its wall time and the gateway's CPU per 1,000 rows, three calls); after each storm, the
# gateway's loop delay (`tunnel_loop_delay_seconds`, sampled once a second, from its metrics) and
# the SYNs the kernel dropped for a full accept queue. STORM_GATEWAY_ARGS: more gateway flags.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=10000 KILLS=1 UPTIME=3 CONNECT_RATE=0 RESUMPTION=true
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) NODES=$2; shift 2 ;;
        --kills) KILLS=$2; shift 2 ;;
        --uptime) UPTIME=$2; shift 2 ;;
        --connect-rate) CONNECT_RATE=$2; shift 2 ;;
        --full-handshakes) RESUMPTION=false; shift ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
done
# shellcheck source=lib/fleet.sh
. "$ROOT/scripts/lib/fleet.sh"

# thread_cpu PID: each thread's name and CPU seconds so far (the loop is `tunnel`, the
# handshake workers `tls-handshake`).
thread_cpu() {
    local tick stat
    tick=$(getconf CLK_TCK)
    for stat in /proc/"$1"/task/*/stat; do
        awk -v t="$tick" '{ sub(/^[^(]*\(/, ""); name = substr($0, 1, index($0, ")") - 1)
            sub(/^[^)]*\) /, ""); if ($12 + $13 > 0) printf "%s %.2f s; ", name, ($12 + $13) / t }' "$stat"
    done
}
fleet_begin fleet-storm

# listen_overflows: connections the kernel dropped for a full accept queue, machine-wide.
listen_overflows() { nstat -az TcpExtListenOverflows | awk '/ListenOverflows/ { print $2 }'; }

METRICS_PORT=$(free_port)
# shellcheck disable=SC2086 # STORM_GATEWAY_ARGS: more gateway flags, e.g. --accepts-per-turn 64
fleet_prepare "$NODES" --session-resumption "$RESUMPTION" --metrics-listen "127.0.0.1:$METRICS_PORT" ${STORM_GATEWAY_ARGS:-}
# shellcheck disable=SC2086 # STORM_SIM_ARGS: more fleet-sim flags, e.g. --full-handshakes
fleet_sim "$WORK/sim.log" --nodes "$NODES" --identities "$FLEET_HOME/ids" "${TOKEN_ARGS[@]}" --connect-rate "$CONNECT_RATE" --status-interval 5s ${STORM_SIM_ARGS:-}
wait_for_line "$WORK/sim.log" "^ONLINE" 1800 "$SIM_PID" || { tail -20 "$WORK/sim.log"; exit 1; }
grep -m1 '^ONLINE' "$WORK/sim.log"
sleep "$UPTIME"
rest_ticks=$(cpu_ticks "$GATEWAY_PID") rest_begin=$(date +%s%N)
for _ in 1 2 3; do "$TUNNEL" nodes --json >"$WORK/rest.json" 2>&1 || { cat "$WORK/rest.json"; exit 1; }; done
rows=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["nodes"]))' "$WORK/rest.json")
figure "tunnel nodes at rest, $rows rows" "$(awk -v t="$(($(cpu_ticks "$GATEWAY_PID") - rest_ticks))" \
    -v w="$((($(date +%s%N) - rest_begin) / 1000000))" -v r="$rows" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f s each; gateway CPU %.0f ms per 1,000 rows", w / 3000, t * 1000 / hz / 3 / r * 1000 }')"

for kill in $(seq 1 "$KILLS"); do
    overflows=$(listen_overflows)
    fleet_gateway_kill
    # The clock starts at the kill: nodes dial again as soon as the new gateway listens, which
    # can be before it says it is ready, so a mark at "ready" would miss the fastest of them.
    kill -USR1 "$SIM_PID"
    sim_ticks=$(cpu_ticks "$SIM_PID")
    restart_begin=$(date +%s%N)
    fleet_gateway_restart || exit 1
    if [ -n "${STORM_PERF:-}" ] && [ "$kill" = 1 ]; then
        perf record -q -e cpu-clock -g -p "$GATEWAY_PID" -o "$STORM_PERF" -- sleep "${STORM_PERF_SECONDS:-15}" >/dev/null 2>&1 &
    fi
    restart_ms=$((($(date +%s%N) - restart_begin) / 1000000))
    sleep 1
    read -r nodes_seconds nodes_status < <(seconds_of timeout 30 "$TUNNEL" nodes --json)
    # The stream needs a node that is back: with none in that list, the list is asked again
    # every half second, for 10 s at most, and the stream starts once one is (its delay said).
    stream_after=$(awk -v b="$restart_begin" -v n="$(date +%s%N)" 'BEGIN { printf "%.1f", (n - b) / 1e9 }')
    for _ in $(seq 1 20); do
        node=$(python3 -c 'import json,sys; print(next((n["name"] for n in json.load(open(sys.argv[1]))["nodes"] if n["online"]), ""))' "$WORK/last.out" 2>/dev/null)
        [ -n "$node" ] && break
        sleep 0.5
        timeout 30 "$TUNNEL" nodes --json >"$WORK/last.out" 2>&1
        stream_after=$(awk -v b="$restart_begin" -v n="$(date +%s%N)" 'BEGIN { printf "%.1f", (n - b) / 1e9 }')
    done
    read -r stream_seconds stream_status < <(seconds_of sh -c "printf storm | timeout 30 '$TUNNEL' proxy '${node:-sim-00000}' echo")
    [ "$(cat "$WORK/last.out")" = storm ] || stream_status="$stream_status, echo wrong: $(head -c 200 "$WORK/last.out")"
    if wait_for_lines "$WORK/sim.log" "^EPISODE" "$kill" 120; then
        episode=$(grep '^EPISODE' "$WORK/sim.log" | sed -n "${kill}p")
    else
        episode="EPISODE $kill: not all back after 120 s: $(grep '^\[' "$WORK/sim.log" | tail -1 | cut -d'|' -f1)"
    fi
    tick_ms=$((1000 / $(getconf CLK_TCK)))
    gateway_ms=$(($(cpu_ticks "$GATEWAY_PID") * tick_ms)) sim_ms=$((($(cpu_ticks "$SIM_PID") - sim_ticks) * tick_ms))
    figure "storm $kill/$KILLS ($NODES nodes): nodes back after the kill" "${episode#EPISODE *: } (gateway ready after $restart_ms ms)"
    figure "storm $kill/$KILLS: tunnel nodes 1 s after restart" "$nodes_seconds s (exit $nodes_status)"
    figure "storm $kill/$KILLS: new stream once a node is back" "$stream_seconds s (exit $stream_status, node ${node:-none listed online}, begun $stream_after s after the kill)"
    figure "storm $kill/$KILLS: gateway loop delay, 1/s samples" "$(curl -s --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" | python3 -c '
import re, sys
buckets = [(float(m.group(1)), int(m.group(2))) for m in
           (re.match(r"tunnel_loop_delay_seconds_bucket\{le=\"([^\"]+)\"\} (\d+)", l) for l in sys.stdin) if m]
if not buckets: print("not reported by this gateway"); sys.exit()
total = max(c for _, c in buckets)
median = next(le for le, c in buckets if c * 2 >= total) if total else 0
print(f"{total} samples: median <= {median * 1000:g} ms, " + ", ".join(f"<= {le * 1000:g} ms {c}" for le, c in buckets if le >= 0.01))')"
    figure "storm $kill/$KILLS: SYNs dropped (ListenOverflows)" "$(($(listen_overflows) - overflows)) (the machine's, from the kill until all back)"
    figure "storm $kill/$KILLS: CPU per reconnect" "$(awk -v g="$gateway_ms" -v s="$sim_ms" -v n="$NODES" \
        'BEGIN { printf "gateway %.3f ms (%.1f s in all), simulator %.3f ms (%.1f s)", g / n, g / 1000, s / n, s / 1000 }')"
    figure "storm $kill/$KILLS: gateway CPU per thread" "$(thread_cpu "$GATEWAY_PID")"
    sleep "$UPTIME"
done
if [ "$KILLS" -gt 1 ]; then
    grep '^EPISODE' "$WORK/sim.log" | python3 -c '
import re, statistics, sys
p99 = [int(re.search(r"p99_ms=(\d+)", l).group(1)) for l in sys.stdin]
print(f"crash loop: {len(p99)} restarts, p99 back after the kill: median {statistics.median(p99):.0f} ms, worst {max(p99)} ms, "
      f"{sum(1 for v in p99 if v <= 2000)} of {len(p99)} within 2 s")' | while read -r line; do figure "${line%%:*}" "${line#*: }"; done
fi
kill -TERM "$SIM_PID"
wait "$SIM_PID"
