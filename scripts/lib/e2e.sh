# Shared by the end-to-end scripts under Tests/EndToEnd and the benchmarks under scripts/: the
# tally of checks, a work directory, and one cleanup that ends the processes the script started
# (PIDS), removes WORK, prints the tally and exits 1 when a check failed. The summary runs from
# the EXIT trap, whose own status bash ignores, hence the explicit exit. Source it, then call
# e2e_begin.

# shellcheck source=loopback.sh
. "$(dirname "${BASH_SOURCE[0]}")/loopback.sh"

PASSED=0
FAILED=0
PIDS=()

pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && sed 's/^/       /' <<<"$2" | tail -n 15; }
# check NAME CMD...: passes when CMD succeeds, else fails showing its output.
check() { local name=$1; shift; local out; if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi; }
# die MESSAGE [LOG]: fails MESSAGE, showing the end of LOG, and ends the script.
die() { fail "$1" "$( [ -f "${2:-}" ] && tail -n 20 "$2")"; exit 1; }
# note TEXT: a progress line, on stderr so that a benchmark's table stays apart.
note() { echo "== $*" >&2; }
# usage_from_header: prints the script's header comment (from line 2 to `set -uo`) as its --help.
usage_from_header() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# expect_ready NAME PID LOG PATTERN [SECONDS]: dies naming NAME when PATTERN does not appear in
# LOG in time, or PID has exited.
expect_ready() {
    local name=$1 pid=$2 log=$3 pattern=$4 seconds=${5:-20}
    wait_for_line "$log" "$pattern" "$seconds" "$pid" || die "$name did not start within ${seconds}s (no \"$pattern\" in $log)" "$log"
    kill -0 "$pid" 2>/dev/null || die "$name exited right after starting" "$log"
}

# e2e_begin NAME [TUNNEL-ARG] [TOOL...]: WORK (a fresh /tmp/tunnel-NAME.XXXXXX, kept when
# KEEP_WORK is set), HOME inside it, TUNNEL (the given path, else .build/debug/tunnel; not
# checked when TUNNEL-ARG is "-"), and every TOOL on the PATH, or exit 2 naming what to run.
# A script that needs more at exit defines e2e_on_exit; it runs after PIDS are ended.
e2e_begin() {
    E2E_NAME=$1
    local tunnel_arg=${2:-}
    shift 2 2>/dev/null || shift $#
    if [ "$tunnel_arg" != - ]; then
        TUNNEL=$(readlink -f "${tunnel_arg:-$ROOT/.build/debug/tunnel}")
        [ -x "$TUNNEL" ] || { echo "no tunnel binary at $TUNNEL (swift build first; -c release for the benchmarks)"; exit 2; }
    fi
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs it)"; exit 2; }
    done
    WORK=$(mktemp -d "/tmp/tunnel-$E2E_NAME.XXXXXX")
    export HOME="$WORK/home"
    mkdir -p "$HOME"
    trap e2e_end EXIT
    trap 'exit 130' INT TERM
}

# e2e_inner NAME: the same tally and summary for the half of a script that runs as another user
# inside namespaces, in a WORK its outer half made and removes. Its processes (tunnel dev) get
# SIGINT, the Ctrl-C its guide speaks of.
e2e_inner() {
    E2E_NAME=$1
    E2E_INNER=1
    trap e2e_end EXIT
}

# Ends PIDS (SIGINT inside e2e_inner, else SIGTERM; SIGKILL for one still there 10 s later), runs
# e2e_on_exit, removes WORK unless KEEP_WORK is set, and prints the tally.
e2e_end() {
    local pid signal=TERM
    [ -n "${E2E_INNER:-}" ] && signal=INT
    for pid in "${PIDS[@]}"; do kill -"$signal" "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    declare -F e2e_on_exit >/dev/null && e2e_on_exit
    if [ -z "${E2E_INNER:-}" ]; then
        [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
    fi
    echo "$E2E_NAME: $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ] || exit 1
}

# --- a gateway on loopback with an admin and nodes, as the benchmarks set one up -------------------

# bench_gateway [GATEWAY FLAG...]: `$TUNNEL gateway` on a free loopback port, data in $WORK/data;
# sets GATEWAY_PORT, GATEWAY_PID and ADMIN (the admin-socket flags). Log: $WORK/gateway.log.
bench_gateway() {
    GATEWAY_PORT=$(free_port)
    start "$WORK/gateway.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$WORK/data" "$@"
    GATEWAY_PID=$LAST_PID
    expect_ready "tunnel gateway" "$GATEWAY_PID" "$WORK/gateway.log" "admin socket open" 20
    ADMIN=(--admin-socket "$WORK/data/admin.sock")
}

# bench_operator: the admin operator `bench`, added over the admin socket and logged in (under
# HOME), so `tunnel nodes`, `proxy` and `forward` work. Log: $WORK/pki.log.
bench_operator() {
    { "$TUNNEL" user add bench --role admin --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost \
        --out "$WORK/bench.yaml" "${ADMIN[@]}" && "$TUNNEL" login "$WORK/bench.yaml"; } >>"$WORK/pki.log" 2>&1 ||
        die "operator setup failed" "$WORK/pki.log"
}

# bench_node NAME LOG SERVICE=HOST:PORT...: enrolls node NAME with a join token (its files in
# $WORK/NAME) and runs its client (`${NODE_CLIENT:-$TUNNEL} client`) in PIDS until it is
# connected; sets NODE_PID.
bench_node() {
    local name=$1 log=$2 service token flags=()
    shift 2
    for service in "$@"; do flags+=(--service "$service"); done
    token=$("$TUNNEL" token create --node "$name" "${ADMIN[@]}" 2>>"$WORK/pki.log") || die "token create failed" "$WORK/pki.log"
    start "$log" "${NODE_CLIENT:-$TUNNEL}" client --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost \
        --token "$token" --cert "$WORK/$name/node.crt" --key "$WORK/$name/node.key" \
        --gateway-ca "$WORK/$name/gateway-ca.crt" "${flags[@]}"
    NODE_PID=$LAST_PID
    expect_ready "tunnel client" "$NODE_PID" "$log" "connected to the gateway" 20
}

# start_echo_server: a line echo server on a free loopback port, in PIDS; sets ECHO_PORT.
start_echo_server() {
    start "$WORK/echo.log" python3 -c '
import socketserver
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile: self.wfile.write(line); self.wfile.flush()
socketserver.ThreadingTCPServer.daemon_threads = True
server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
print("READY port=%d" % server.server_address[1], flush=True)
server.serve_forever()'
    expect_ready "echo server" "$LAST_PID" "$WORK/echo.log" "READY port=" 10
    ECHO_PORT=$(grep -o 'READY port=[0-9]*' "$WORK/echo.log" | cut -d= -f2)
}
