#!/usr/bin/env bash
# Side-by-side loopback benchmark of three paths from an "operator" to a TCP service on a "node":
#   direct   the operator connects to the service on 127.0.0.1
#   ssh-R    an sshd started here; the node runs `ssh -N -R 0:127.0.0.1:SERVICE` (default cipher);
#            the operator connects to the port sshd allocated
#   tunnel   `tunnel gateway` + `tunnel client --service ...` + a long-running operator
#            `tunnel forward NODE SERVICE --listen 127.0.0.1:PORT`; the operator connects to it
# Every figure is measured for the three paths in the same run (interleaved, order rotated per
# repetition); the table shows medians over the repetitions that succeeded (failures are counted
# in the cell) and the ratios tunnel/ssh-R and
# tunnel/direct.
#
#   scripts/bench-tunnel.sh [--quick] [--runs N] [--bytes SIZE] [--conns N] [--rtts N]
#                           [--tunnel PATH] [--out DIR] [--keep]
#     --quick       smoke run: 64M per throughput test, 1 repetition, 300 round trips, 200 connections
#     --runs N      repetitions (default 3)
#     --bytes SIZE  bytes per throughput test, iperf3 syntax (default 1G; with -P 8 it is the total)
#     --rtts N      64-byte round trips per latency test after 200 warm-up ones (default 2000)
#     --conns N     connections per new-stream test (default 1000)
#     --limit S     seconds after which a throughput test counts as stalled and is cut (default 90)
#     --tunnel PATH the binary (default .build/release/tunnel)
#     --out DIR     keep raw outputs (iperf3 JSON, samples, logs, table) in DIR
#     --keep        keep the temporary directory
#     --no-shaped   skip the keystroke figures on the shaped link
# Then, as root: keystroke round trips (1 byte, interactive class) idle, under a bulk download and
# under an upload on the same node connection, across a 20 Mbit/s `tc tbf` link between two
# network namespaces made here (scripts/lib/shaped-link.sh), next to two plain TCP connections on
# the same link (the "direct" column). Skipped with a note where namespaces cannot be made.
# The edge agent's own footprint (RSS idle and busy, wakeups, binary sizes) is scripts/bench-edge.sh;
# what opening many streams at once costs in audit syncs, scripts/bench-stream-open.sh.
# Needs: iperf3, python3, /usr/sbin/sshd, ssh, ssh-keygen (apt-get install iperf3 openssh-server).
# Exits non-zero with a message naming the component when anything fails to start, and non-zero
# after printing the table when any measurement failed (a stalled stream is cut by a timeout).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/e2e.sh
. "$ROOT/scripts/lib/e2e.sh"
QUICK=0 RUNS=3 BYTES=1G CONNS=1000 RTTS=2000 OUT="" TUNNEL="" LIMIT=90 SHAPED=1 KEYS=200
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; RUNS=1; BYTES=64M; CONNS=200; RTTS=300; LIMIT=40; KEYS=60 ;;
        --no-shaped) SHAPED=0 ;;
        --limit) LIMIT=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --bytes) BYTES=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --rtts) RTTS=$2; shift ;;
        --tunnel) TUNNEL=$2; shift ;;
        --out) OUT=$2; shift ;;
        --keep) KEEP_WORK=1 ;;
        -h|--help) usage_from_header; exit 0 ;;
        *) echo "bench-tunnel: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
e2e_begin bench-tunnel "${TUNNEL:-$ROOT/.build/release/tunnel}" iperf3 python3 /usr/sbin/sshd ssh ssh-keygen timeout tail grep
RAW=${OUT:-$WORK/raw}
mkdir -p "$RAW"
RAW=$(readlink -f "$RAW")
FAILURES=0
TICK=$(getconf CLK_TCK)

SAMPLER=""
e2e_on_exit() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    declare -F shaped_link_down >/dev/null && shaped_link_down
    if [ -n "$OUT" ]; then cp "$WORK"/*.log "$RAW/" 2>/dev/null; fi
}

# --- helpers in Python: echo server, round-trip latency, new streams per second ----------------
cat >"$WORK/echo.py" <<'PY'
import socket, sys, threading, time, json, statistics

def serve():
    # One thread, non-blocking accept and reads: per-connection cost stays small and steady.
    import selectors
    sel = selectors.DefaultSelector()
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0)); srv.listen(1024); srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ, None)
    print("READY port=%d" % srv.getsockname()[1], flush=True)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try: c, _ = srv.accept()
                except BlockingIOError: continue
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, 1)
                continue
            c = key.fileobj
            try: d = c.recv(65536)
            except BlockingIOError: continue
            except OSError: d = b""
            if not d:
                sel.unregister(c); c.close(); continue
            try:
                c.setblocking(True); c.settimeout(10); c.sendall(d); c.setblocking(False)
            except OSError:
                sel.unregister(c); c.close()

def recv_exactly(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d: raise RuntimeError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += d
    return buf

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]

def rtt(port, n, warm):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"x" * 64; out = []
    for i in range(warm + n):
        t0 = time.perf_counter_ns(); s.sendall(msg); recv_exactly(s, 64); t1 = time.perf_counter_ns()
        if i >= warm: out.append((t1 - t0) / 1000.0)
    s.close()
    print(json.dumps({"n": n, "p50_us": pct(out, 50), "p99_us": pct(out, 99), "mean_us": statistics.mean(out), "max_us": max(out)}))

def conns(port, n):
    usable = []; t_start = time.perf_counter_ns()
    for i in range(n):
        t0 = time.perf_counter_ns()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"!"); recv_exactly(s, 1)
        usable.append((time.perf_counter_ns() - t0) / 1000.0)
        s.close()
    total = (time.perf_counter_ns() - t_start) / 1e9
    print(json.dumps({"n": n, "per_s": n / total, "usable_p50_us": pct(usable, 50), "usable_p99_us": pct(usable, 99), "max_us": max(usable)}))

mode = sys.argv[1]
if mode == "serve": serve()
elif mode == "rtt": rtt(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
elif mode == "conns": conns(int(sys.argv[2]), int(sys.argv[3]))
PY

# --- process accounting --------------------------------------------------------------------------
# A PID and all its descendants (sshd forks a monitor and a session process per connection).
tree() {
    local root=$1
    python3 - "$root" <<'PY'
import os, sys
root = int(sys.argv[1]); kids = {}
for d in os.listdir("/proc"):
    if not d.isdigit(): continue
    try:
        with open("/proc/%s/stat" % d) as f: st = f.read()
    except OSError: continue
    ppid = int(st.rsplit(")", 1)[1].split()[1]); kids.setdefault(ppid, []).append(int(d))
out, todo = [], [root]
while todo:
    p = todo.pop(); out.append(p); todo += kids.get(p, [])
print(" ".join(map(str, out)))
PY
}
# CPU ticks (utime+stime) summed over the given PIDs.
ticks() {
    local sum=0 pid rest
    for pid in "$@"; do
        rest=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${rest##*) }
        read -r -a f <<<"$rest"
        sum=$((sum + f[11] + f[12]))
    done
    echo "$sum"
}
# Resident memory in KiB summed over the given PIDs (FIELD: VmRSS or VmHWM).
rss_kib() {
    local field=$1 sum=0 pid v; shift
    for pid in "$@"; do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

RESULTS=$RAW/results.tsv
: >"$RESULTS"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }   # rep path metric value

# --- the node's services ---------------------------------------------------------------------------
IPERF_PORT=$(free_port)
start_iperf_server() {
    start "$WORK/iperf3-server.log" iperf3 -s -p "$IPERF_PORT" --forceflush --idle-timeout 30
    IPERF_PID=$LAST_PID
    expect_ready "iperf3 server" "$IPERF_PID" "$WORK/iperf3-server.log" "Server listening on $IPERF_PORT" 10
}
start_iperf_server
start "$WORK/echo.log" python3 "$WORK/echo.py" serve
ECHO_PID=$LAST_PID
expect_ready "echo server" "$ECHO_PID" "$WORK/echo.log" "READY port=" 10
ECHO_PORT=$(grep -o 'READY port=[0-9]*' "$WORK/echo.log" | cut -d= -f2)

# --- path b: sshd + ssh -R -------------------------------------------------------------------------
SSHD_PORT=$(free_port)
prepare_sshd "$SSHD_PORT" "AllowTcpForwarding yes"
start "$WORK/sshd.log" /usr/sbin/sshd -D -e -f "$WORK/sshd_config"
SSHD_PID=$LAST_PID
expect_ready "sshd" "$SSHD_PID" "$WORK/sshd.log" "Server listening" 10
SSH_OPTS=(-F /dev/null -i "$WORK/id" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new
          -o UserKnownHostsFile="$WORK/known_hosts" -p "$SSHD_PORT")
# The negotiated cipher, for the record (a separate short connection with -v).
timeout 20 ssh -v "${SSH_OPTS[@]}" root@127.0.0.1 true >"$WORK/ssh-cipher.log" 2>&1 \
    || die "ssh to the benchmark sshd failed" "$WORK/ssh-cipher.log"
SSH_CIPHER=$(grep -o 'kex: client->server cipher: [^ ]*' "$WORK/ssh-cipher.log" | head -1 | awk '{print $4}')
# Port 0: sshd allocates the listening port and ssh reports it ("Allocated port N for remote
# forward to ...") once the forward is established: the ready line, without -v's per-channel logging.
start "$WORK/ssh-R.log" ssh -N "${SSH_OPTS[@]}" -o ExitOnForwardFailure=yes -o ServerAliveInterval=0 \
    -R "0:127.0.0.1:$IPERF_PORT" -R "0:127.0.0.1:$ECHO_PORT" root@127.0.0.1
SSHR_PID=$LAST_PID
expect_ready "ssh -R (iperf3 forward)" "$SSHR_PID" "$WORK/ssh-R.log" "Allocated port [0-9]+ for remote forward to 127.0.0.1:$IPERF_PORT" 20
expect_ready "ssh -R (echo forward)" "$SSHR_PID" "$WORK/ssh-R.log" "Allocated port [0-9]+ for remote forward to 127.0.0.1:$ECHO_PORT" 20
SSHR_IPERF=$(grep -oE "Allocated port [0-9]+ for remote forward to 127.0.0.1:$IPERF_PORT\b" "$WORK/ssh-R.log" | awk '{print $3}')
SSHR_ECHO=$(grep -oE "Allocated port [0-9]+ for remote forward to 127.0.0.1:$ECHO_PORT\b" "$WORK/ssh-R.log" | awk '{print $3}')

# --- path c: tunnel gateway + client + operator forwards -----------------------------------------------
# The gateway makes its own PKI; root bootstraps the operator over the admin socket, and the node
# enrolls with a join token, as in production.
# The new-stream test opens thousands of streams a minute as one operator: the per-operator budget
# (600 a minute by default, docs/TUNNEL.md admission limits) is raised so it measures the path.
bench_gateway --stream-records-per-operator-per-minute 1000000
bench_operator
bench_node node-1 "$WORK/client.log" "iperf=127.0.0.1:$IPERF_PORT" "echo=127.0.0.1:$ECHO_PORT"
CLIENT_PID=$NODE_PID
# Explicit ports: the documented default `--listen 127.0.0.1:0` is refused ("the port must be a
# number from 1 to 65535").
start "$WORK/forward-iperf.log" "$TUNNEL" forward node-1 iperf --listen "127.0.0.1:$(free_port)"
FWD_IPERF_PID=$LAST_PID
expect_ready "tunnel forward (iperf)" "$FWD_IPERF_PID" "$WORK/forward-iperf.log" "^forwarding " 20
start "$WORK/forward-echo.log" "$TUNNEL" forward node-1 echo --listen "127.0.0.1:$(free_port)"
FWD_ECHO_PID=$LAST_PID
expect_ready "tunnel forward (echo)" "$FWD_ECHO_PID" "$WORK/forward-echo.log" "^forwarding " 20
TUN_IPERF=$(grep -oE '^forwarding [0-9.]+:[0-9]+' "$WORK/forward-iperf.log" | head -1 | awk -F: '{print $2}')
TUN_ECHO=$(grep -oE '^forwarding [0-9.]+:[0-9]+' "$WORK/forward-echo.log" | head -1 | awk -F: '{print $2}')
[ -n "$TUN_IPERF" ] && [ -n "$TUN_ECHO" ] || die "could not read the forward ports" "$WORK/forward-iperf.log"

declare -A IPERF_AT=([direct]=$IPERF_PORT [ssh-R]=$SSHR_IPERF [tunnel]=$TUN_IPERF)
declare -A ECHO_AT=([direct]=$ECHO_PORT [ssh-R]=$SSHR_ECHO [tunnel]=$TUN_ECHO)

# The processes each path adds (the iperf3 and echo endpoints are common to all paths).
# ssh-R "server" = sshd and every process it forked; "client" = ssh -R. tunnel "operator" = forward.
server_pids() { case $1 in ssh-R) tree "$SSHD_PID" ;; tunnel) echo "$GATEWAY_PID" ;; *) echo ;; esac; }
client_pids() { case $1 in ssh-R) echo "$SSHR_PID" ;; tunnel) echo "$CLIENT_PID" ;; *) echo ;; esac; }
operator_pids() { case $1 in tunnel) echo "$FWD_IPERF_PID" ;; *) echo ;; esac; }
all_alive() {
    local pid
    for pid in "$SSHD_PID" "$SSHR_PID" "$GATEWAY_PID" "$CLIENT_PID" "$FWD_IPERF_PID" "$FWD_ECHO_PID" "$ECHO_PID"; do
        kill -0 "$pid" 2>/dev/null || { echo "process $pid died"; return 1; }
    done
}

idle_memory() {   # label
    local label=$1 p
    for p in ssh-R tunnel; do
        # shellcheck disable=SC2046
        record 0 "$p" "rss_${label}_server_kib" "$(rss_kib VmRSS $(server_pids "$p"))"
        # shellcheck disable=SC2046
        record 0 "$p" "rss_${label}_client_kib" "$(rss_kib VmRSS $(client_pids "$p"))"
    done
    record 0 tunnel "rss_${label}_operator_kib" "$(rss_kib VmRSS "$FWD_IPERF_PID")"
}
idle_memory idle

# throughput REP PATH NAME IPERF-ARGS...: one iperf3 test; records Gbit/s, CPU s/GiB per component,
# and for NAME=p8 the largest VmRSS sampled while it ran.
throughput() {
    local rep=$1 path=$2 name=$3; shift 3
    local port=${IPERF_AT[$path]} json="$RAW/iperf-$name-$path-$rep.json"
    local s c o s0 c0 o0 sampler="" status
    s=$(server_pids "$path"); c=$(client_pids "$path"); o=$(operator_pids "$path")
    # shellcheck disable=SC2086
    s0=$(ticks $s); c0=$(ticks $c); o0=$(ticks $o)
    if [ "$name" = p8 ] && [ "$path" != direct ]; then
        # Samples RSS every 0.1 s (bounded: at most 20 minutes) until it is ended below.
        # shellcheck disable=SC2086
        ( for _ in $(seq 1 12000); do echo "$(rss_kib VmRSS $s) $(rss_kib VmRSS $c)"; sleep 0.1; done ) \
            >"$RAW/rss-$name-$path-$rep.txt" 2>/dev/null &
        sampler=$!
        SAMPLER=$sampler
    fi
    timeout "$LIMIT" iperf3 -c 127.0.0.1 -p "$port" -n "$BYTES" --connect-timeout 5000 -J "$@" >"$json" 2>&1
    status=$?
    if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null; SAMPLER=""; fi
    local s1 c1 o1
    # shellcheck disable=SC2086
    s1=$(ticks $s); c1=$(ticks $c); o1=$(ticks $o)
    local parsed
    parsed=$(python3 - "$json" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
if "error" in d: raise SystemExit(1)
r = d["end"]["sum_received"]
print(r["bits_per_second"] / 1e9, r["bytes"])
PY
)
    if [ $status != 0 ] || [ -z "$parsed" ]; then
        FAILURES=$((FAILURES + 1))
        echo "FAILED: iperf3 $name through $path (rep $rep, exit $status): $(grep -o '"error":.*' "$json" | head -1)" >&2
        # What did arrive, and the longest run of one-second intervals without a byte.
        python3 - "$json" "$LIMIT" <<'PY' >&2
import json, sys
try: d = json.load(open(sys.argv[1]))
except Exception as e: print("        (no iperf3 JSON: %s)" % e); raise SystemExit
iv = [i["sum"]["bytes"] for i in d.get("intervals", [])]
gap = best = 0
for b in iv:
    gap = gap + 1 if b == 0 else 0; best = max(best, gap)
nz = [(k, b) for k, b in enumerate(iv) if b]
print("        sender moved %.1f MiB in %d s; longest silence %d s; non-empty seconds: %s"
      % (sum(iv) / 2**20, len(iv), best, ", ".join("%d:%.2fMiB" % (k, b / 2**20) for k, b in nz[:12])))
PY
        all_alive >&2
        record "$rep" "$path" "${name}_gbps" FAIL
        # A stalled test can leave the iperf3 server busy: start a fresh one.
        kill "$IPERF_PID" 2>/dev/null; wait "$IPERF_PID" 2>/dev/null
        start_iperf_server
        return
    fi
    local gbps bytes
    read -r gbps bytes <<<"$parsed"
    printf '%s\t%s\t%s\tserver %s→%s client %s→%s operator %s→%s ticks (pids %s | %s | %s)\n' "$rep" "$path" "$name" \
        "$s0" "$s1" "$c0" "$c1" "$o0" "$o1" "$s" "$c" "$o" >>"$RAW/cpu-ticks.txt"
    record "$rep" "$path" "${name}_gbps" "$gbps"
    if [ "$path" != direct ]; then
        local gib; gib=$(python3 -c "print($bytes / 2**30)")
        record "$rep" "$path" "${name}_cpu_server_s_per_gib" "$(python3 -c "print(($s1 - $s0) / $TICK / $gib)")"
        record "$rep" "$path" "${name}_cpu_client_s_per_gib" "$(python3 -c "print(($c1 - $c0) / $TICK / $gib)")"
        [ "$path" = tunnel ] && record "$rep" "$path" "${name}_cpu_operator_s_per_gib" "$(python3 -c "print(($o1 - $o0) / $TICK / $gib)")"
        if [ -n "$sampler" ]; then
            record "$rep" "$path" "rss_load_server_kib" "$(awk 'BEGIN{m=0} $1>m{m=$1} END{print m}' "$RAW/rss-$name-$path-$rep.txt")"
            record "$rep" "$path" "rss_load_client_kib" "$(awk 'BEGIN{m=0} $2>m{m=$2} END{print m}' "$RAW/rss-$name-$path-$rep.txt")"
        fi
    fi
    echo "   $name $path: $(printf '%.2f' "$gbps") Gbit/s" >&2
}

echo_test() {   # REP PATH
    local rep=$1 path=$2 out
    if out=$(timeout 120 python3 "$WORK/echo.py" rtt "${ECHO_AT[$path]}" "$RTTS" 200 2>&1); then
        echo "$out" >"$RAW/rtt-$path-$rep.json"
        record "$rep" "$path" rtt_p50_us "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['p50_us'])" "$out")"
        record "$rep" "$path" rtt_p99_us "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['p99_us'])" "$out")"
        echo "   rtt $path: $out" >&2
    else
        FAILURES=$((FAILURES + 1)); echo "FAILED: 64-byte round trips through $path (rep $rep): $out" >&2
        record "$rep" "$path" rtt_p50_us FAIL
    fi
    if out=$(timeout 300 python3 "$WORK/echo.py" conns "${ECHO_AT[$path]}" "$CONNS" 2>&1); then
        echo "$out" >"$RAW/conns-$path-$rep.json"
        for k in per_s usable_p50_us usable_p99_us; do
            record "$rep" "$path" "conn_$k" "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$out" "$k")"
        done
        echo "   conns $path: $out" >&2
    else
        FAILURES=$((FAILURES + 1)); echo "FAILED: new streams through $path (rep $rep): $out" >&2
        record "$rep" "$path" conn_per_s FAIL
    fi
}

note "tunnel $TUNNEL; ssh cipher $SSH_CIPHER; $RUNS repetition(s), $BYTES per throughput test"
note "ports: service iperf3 $IPERF_PORT echo $ECHO_PORT; ssh-R $SSHR_IPERF/$SSHR_ECHO; tunnel $TUN_IPERF/$TUN_ECHO"
PATHS=(direct ssh-R tunnel)
for rep in $(seq 1 "$RUNS"); do
    # Rotate the order per repetition so no path always runs first (or last) on a noisy machine.
    order=("${PATHS[@]:$(( (rep - 1) % 3 ))}" "${PATHS[@]:0:$(( (rep - 1) % 3 ))}")
    note "repetition $rep/$RUNS (order: ${order[*]})"
    for path in "${order[@]}"; do throughput "$rep" "$path" p1; done
    for path in "${order[@]}"; do throughput "$rep" "$path" p1r -R; done
    for path in "${order[@]}"; do throughput "$rep" "$path" p8 -P 8; done
    for path in "${order[@]}"; do echo_test "$rep" "$path"; done
    all_alive >/dev/null || { FAILURES=$((FAILURES + 1)); echo "FAILED: $(all_alive)" >&2; break; }
done
idle_memory after

# --- keystrokes on a shaped 20 Mbit/s link -----------------------------------------------------------
# The plain TCP control is recorded as "direct". Its own operator login (HOME) and gateway, so the
# loopback paths above are untouched.
shaped_keystrokes() {
    local rep path load out bytes=$((KEYS * 150000)) home="$WORK/shaped-home"
    # shellcheck source=lib/shaped-link.sh
    . "$ROOT/scripts/lib/shaped-link.sh"
    if ! shaped_link_up 20mbit 2>"$WORK/shaped-link.err"; then
        note "no shaped link (needs root, ip netns and tc): $(head -1 "$WORK/shaped-link.err")"; return
    fi
    mkdir -p "$home"
    HOME=$home SHAPED_TUNNEL=$TUNNEL shaped_link_start "$TUNNEL" "$bytes" 2>"$WORK/shaped-start.err" || {
        FAILURES=$((FAILURES + 1)); echo "FAILED: the shaped link's gateway and node: $(tail -3 "$WORK/shaped-start.err")" >&2; return; }
    for rep in $(seq 1 "$RUNS"); do
        for path in tcp tunnel; do
            for load in idle bulk upload; do
                out=$(HOME=$home SHAPED_TUNNEL=$TUNNEL shaped_measure "$path" "$load" "$KEYS" "$bytes")
                echo "$out" >"$RAW/keys-$path-$load-$rep.json"
                local column=$path; [ "$path" = tcp ] && column=direct
                if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["echoes"] == d["count"] and d.get("bulk_intact", True) else 1)' "$out" 2>/dev/null; then
                    for k in p50_ms p99_ms $([ "$load" != idle ] && echo bulk_mbit_s); do
                        record "$rep" "$column" "key_${load}_$k" "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$out" "$k")"
                    done
                    echo "   keystrokes $path $load: $out" >&2
                else
                    FAILURES=$((FAILURES + 1)); echo "FAILED: keystrokes $path $load (rep $rep): $out" >&2
                    record "$rep" "$column" "key_${load}_p50_ms" FAIL
                fi
            done
        done
    done
}
[ "$SHAPED" = 1 ] && { note "keystrokes on a 20 Mbit/s shaped link, $KEYS per run"; shaped_keystrokes; }
# shellcheck disable=SC2046
record 0 tunnel rss_hwm_server_kib "$(rss_kib VmHWM "$GATEWAY_PID")"
record 0 tunnel rss_hwm_client_kib "$(rss_kib VmHWM "$CLIENT_PID")"
# shellcheck disable=SC2046
record 0 ssh-R rss_hwm_server_kib "$(rss_kib VmHWM $(server_pids ssh-R))"
record 0 ssh-R rss_hwm_client_kib "$(rss_kib VmHWM "$SSHR_PID")"

# --- the table ---------------------------------------------------------------------------------------
python3 - "$RESULTS" "$BYTES" "$RUNS" <<'PY' | tee "$RAW/table.md"
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    rep, path, metric, value = line.rstrip("\n").split("\t")
    rows[(metric, path)].append(value)
failed = {}
def med(metric, path):
    # The median of the repetitions that succeeded; failures are counted and shown.
    vs = rows.get((metric, path))
    if not vs: return None
    ok = [float(v) for v in vs if v != "FAIL"]
    failed[(metric, path)] = (len(vs) - len(ok), len(vs))
    if not ok: return "FAIL"
    return statistics.median(ok)
def cell(metric, path, v, digits):
    if v is None: return "–"
    if v == "FAIL": return "**FAIL**"
    text = f"{v:.{digits}f}"
    bad, n = failed.get((metric, path), (0, 0))
    return text + (f" (**{bad}/{n} failed**)" if bad else "")
def ratio(a, b):
    if not isinstance(a, float) or not isinstance(b, float) or b == 0: return "–"
    return f"{a / b:.2f}×"
table = [
    ("1 stream op→node, Gbit/s", "p1_gbps", 2),
    ("1 stream node→op (-R), Gbit/s", "p1r_gbps", 2),
    ("8 streams op→node, Gbit/s", "p8_gbps", 2),
    ("CPU s/GiB, gateway / sshd (1 stream)", "p1_cpu_server_s_per_gib", 2),
    ("CPU s/GiB, client / ssh -R (1 stream)", "p1_cpu_client_s_per_gib", 2),
    ("CPU s/GiB, operator forward (1 stream)", "p1_cpu_operator_s_per_gib", 2),
    ("CPU s/GiB, gateway / sshd (8 streams)", "p8_cpu_server_s_per_gib", 2),
    ("CPU s/GiB, client / ssh -R (8 streams)", "p8_cpu_client_s_per_gib", 2),
    ("CPU s/GiB, operator forward (8 streams)", "p8_cpu_operator_s_per_gib", 2),
    ("64-byte RTT p50, µs", "rtt_p50_us", 1),
    ("64-byte RTT p99, µs", "rtt_p99_us", 1),
    ("new streams per second (connect, 1 B echo, close)", "conn_per_s", 0),
    ("new stream usable (connect → 1 B echoed) p50, µs", "conn_usable_p50_us", 0),
    ("new stream usable p99, µs", "conn_usable_p99_us", 0),
    ("RSS idle, gateway / sshd, MiB", "rss_idle_server_kib", 1),
    ("RSS idle, client / ssh -R, MiB", "rss_idle_client_kib", 1),
    ("RSS idle, operator forward, MiB", "rss_idle_operator_kib", 1),
    ("RSS under 8-stream load (max), gateway / sshd, MiB", "rss_load_server_kib", 1),
    ("RSS under 8-stream load (max), client / ssh -R, MiB", "rss_load_client_kib", 1),
    ("RSS peak (VmHWM) at the end, gateway / sshd, MiB", "rss_hwm_server_kib", 1),
    ("RSS peak (VmHWM) at the end, client / ssh -R, MiB", "rss_hwm_client_kib", 1),
    ("RSS idle after the run, gateway / sshd, MiB", "rss_after_server_kib", 1),
    ("RSS idle after the run, client / ssh -R, MiB", "rss_after_client_kib", 1),
    ("keystroke RTT idle p50, 20 Mbit/s link, ms (direct = plain TCP)", "key_idle_p50_ms", 1),
    ("keystroke RTT idle p99, ms", "key_idle_p99_ms", 1),
    ("keystroke RTT under bulk p50, ms (direct = 2 plain TCP conns)", "key_bulk_p50_ms", 1),
    ("keystroke RTT under bulk p99, ms", "key_bulk_p99_ms", 1),
    ("the bulk download beside them, Mbit/s (link: 20)", "key_bulk_bulk_mbit_s", 1),
    ("keystroke RTT under an upload to the node p50, ms", "key_upload_p50_ms", 1),
    ("keystroke RTT under an upload p99, ms", "key_upload_p99_ms", 1),
    ("the upload beside them, Mbit/s (link: 20)", "key_upload_bulk_mbit_s", 1),
]
print(f"medians of {sys.argv[3]} repetition(s) (of those that succeeded), {sys.argv[2]} per throughput test")
print()
print("| figure | direct | ssh -R | tunnel | tunnel/ssh-R | tunnel/direct |")
print("|---|---:|---:|---:|---:|---:|")
for label, metric, digits in table:
    vals = [med(metric, p) for p in ("direct", "ssh-R", "tunnel")]
    if metric.startswith("rss_"):
        vals = [v / 1024 if isinstance(v, float) else v for v in vals]
    if all(v is None for v in vals): continue
    cells = [cell(metric, p, v, digits) for p, v in zip(("direct", "ssh-R", "tunnel"), vals)]
    print(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {ratio(vals[2], vals[1])} | {ratio(vals[2], vals[0])} |")
print()
for test, what in (("p1", "1 stream"), ("p8", "8 streams")):
    for role, name in (("server", "gateway"), ("client", "client")):
        g = med(f"{test}_cpu_{role}_s_per_gib", "tunnel")
        if isinstance(g, float):
            print(f"tunnel {name} CPU per relayed byte ({what}): {g * 1e9 / 2**30:.2f} ns")
for p in ("ssh-R", "tunnel"):
    a, d = med("rtt_p50_us", p), med("rtt_p50_us", "direct")
    if isinstance(a, float) and isinstance(d, float):
        print(f"added 64-byte RTT p50 over direct, {p}: {a - d:.1f} µs")
PY

if [ "$FAILURES" != 0 ]; then
    echo "bench-tunnel: $FAILURES measurement(s) FAILED (see above and the logs)" >&2
    exit 1
fi
