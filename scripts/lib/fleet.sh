# Shared by scripts/fleet-*.sh: a release gateway on loopback, its admin, operator bundles, join
# tokens, the fleet simulator (Benchmarks/FleetSim), and the gateway's RSS and CPU read from
# /proc. Source it, then call fleet_begin NAME: the work directory, the processes ended at exit
# and the tally of checks are scripts/lib/e2e.sh's (pass, fail, "N passed, N failed").
#
# Environment:
#   FLEET_DIR   where a fleet's gateway data and enrolled identities are kept between runs, so a
#               10,000-node fleet enrolls once (default /var/tmp/tunnel-fleet; per node count)
#   FLEET_BIN   directory holding release builds of `tunnel` and `fleet-sim` (default: build them
#               with `swift build -c release --package-path Benchmarks`, exclusivity checks off
#               as shipped)
#   FLEET_TUNNEL a `tunnel` binary to use as gateway and CLI instead (CI passes its debug build,
#               which it has already, so that only the simulator is built here)
#   FLEET_SIM_CONFIG  release (default) or debug: how the simulator is built

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=e2e.sh
. "$ROOT/scripts/lib/e2e.sh"

# fleet_begin NAME: WORK, HOME and the exit cleanup (e2e_begin), then the builds (fleet_build).
fleet_begin() {
    e2e_begin "$1" - python3
    fleet_build || exit 1
}

# fleet_prepare NODES [GATEWAY FLAGS...]: the gateway on the fleet's kept data
# ($FLEET_DIR/nNODES), an admin operator logged in for `tunnel nodes`, and TOKEN_ARGS: a token
# for the simulator when the fleet's identities are not all enrolled yet.
fleet_prepare() {
    local nodes=$1; shift
    FLEET_HOME=${FLEET_DIR:-/var/tmp/tunnel-fleet}/n$nodes
    mkdir -p "$FLEET_HOME"
    fleet_gateway_start "$FLEET_HOME/data" "$@" || exit 1
    fleet_operator "admin$$" && fleet_login "admin$$" || exit 1
    TOKEN_ARGS=()
    [ "$(ls "$FLEET_HOME/ids" 2>/dev/null | grep -c '\.crt$')" -ge "$nodes" ] || TOKEN_ARGS=(--token "$(fleet_token "$nodes")")
}

# fleet_build: builds what FLEET_BIN and FLEET_TUNNEL do not provide; sets TUNNEL and FLEET_SIM.
fleet_build() {
    local config=${FLEET_SIM_CONFIG:-release} started=$SECONDS
    if [ -z "${FLEET_BIN:-}" ]; then
        if [ -z "${FLEET_TUNNEL:-}" ]; then
            TUNNEL_UNCHECKED_EXCLUSIVITY=1 swift build -c release --package-path "$ROOT/Benchmarks" --product tunnel >&2 || return 1
        fi
        TUNNEL_UNCHECKED_EXCLUSIVITY=1 swift build -c "$config" --package-path "$ROOT/Benchmarks" --product fleet-sim >&2 || return 1
        FLEET_BIN=$ROOT/Benchmarks/.build/$config
        echo "built ${FLEET_TUNNEL:+only }fleet-sim${FLEET_TUNNEL:- and tunnel} ($config) in $((SECONDS - started)) s" >&2
    fi
    TUNNEL=${FLEET_TUNNEL:-$FLEET_BIN/tunnel}
    FLEET_SIM=$FLEET_BIN/fleet-sim
}

# fleet_gateway_start DATA_DIR [EXTRA GATEWAY FLAGS...]: a gateway on a free port with an
# allow-everything admin policy; sets GATEWAY_PID, GATEWAY_PORT, GATEWAY_DATA, ADMIN_SOCKET.
# A data directory used before keeps its CAs, so identities enrolled then still work.
fleet_gateway_start() {
    GATEWAY_DATA=$1; shift
    GATEWAY_PORT=${GATEWAY_PORT:-$(free_port)}
    GATEWAY_FLAGS=("$@")
    ADMIN_SOCKET=$GATEWAY_DATA/admin.sock
    [ -f "$WORK/policy.yaml" ] || cat >"$WORK/policy.yaml" <<'POLICY'
roles:
  admin:
    admin: true
    allow:
      - services: ["*"]
        nodes: ["*"]
POLICY
    fleet_gateway_restart
}

# fleet_gateway_restart: starts the gateway again with the same port, data and flags.
fleet_gateway_restart() {
    # A fresh log, so the wait below cannot match the previous instance's line.
    [ -f "$WORK/gateway.log" ] && mv -f "$WORK/gateway.log" "$WORK/gateway.previous.log"
    start "$WORK/gateway.log" "$TUNNEL" gateway --listen "127.0.0.1:$GATEWAY_PORT" --data-dir "$GATEWAY_DATA" \
        --policy "$WORK/policy.yaml" "${GATEWAY_FLAGS[@]}"
    GATEWAY_PID=$LAST_PID
    wait_for_line "$WORK/gateway.log" "admin socket open" 60 "$GATEWAY_PID" || { cat "$WORK/gateway.log" >&2; return 1; }
}

# fleet_gateway_kill: kill -9, and wait until the process is gone.
fleet_gateway_kill() {
    kill -9 "$GATEWAY_PID" 2>/dev/null
    wait "$GATEWAY_PID" 2>/dev/null
    return 0
}

# fleet_operator NAME: an admin operator bundle at $WORK/NAME.yaml (through the admin socket).
fleet_operator() {
    "$TUNNEL" user add "$1" --role admin --ttl 12h --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost \
        --out "$WORK/$1.yaml" --admin-socket "$ADMIN_SOCKET" >/dev/null
}

# fleet_login NAME: installs NAME's bundle as the operator of this shell's HOME, for `tunnel nodes`.
fleet_login() {
    "$TUNNEL" login "$WORK/$1.yaml" >/dev/null
}

# fleet_token USES: prints a join token for USES nodes, valid two hours.
fleet_token() {
    "$TUNNEL" token create --uses "$1" --ttl 2h --admin-socket "$ADMIN_SOCKET"
}

# fleet_sim LOG ARGS...: starts the simulator against the gateway; sets SIM_PID.
fleet_sim() {
    local log=$1; shift
    start "$log" "$FLEET_SIM" --gateway "127.0.0.1:$GATEWAY_PORT" --server-name localhost "$@"
    SIM_PID=$LAST_PID
}

# rss_kib PID: resident set size in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# anon_kib PID: the anonymous part of the resident set (heap, stacks), in KiB.
anon_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }

# cpu_ticks PID: user + system CPU time in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# load_average: the 1-minute load average, recorded with every figure (the machine is shared).
load_average() { cut -d' ' -f1 /proc/loadavg; }

# seconds_of CMD...: runs CMD, prints its wall time in seconds (3 decimals) and its status.
seconds_of() {
    local begin end status
    begin=$(date +%s%N)
    "$@" >"$WORK/last.out" 2>&1
    status=$?
    end=$(date +%s%N)
    printf '%d.%03d %d\n' $(((end - begin) / 1000000000)) $(((end - begin) / 1000000 % 1000)) "$status"
}

# figure NAME VALUE: one result line, also appended to $FLEET_RESULTS when set.
figure() {
    local line
    line=$(printf '%-48s %s   (load %s)' "$1" "$2" "$(load_average)")
    echo "$line"
    [ -n "${FLEET_RESULTS:-}" ] && echo "$line" >>"$FLEET_RESULTS"
    return 0
}
